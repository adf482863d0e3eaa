"""labels that cannot be forged: tag hierarchy and approval, private opt-in, vote rate index;
deep training: the run's depth and stored activations

Revision ID: 3cc206e8d6f1
Revises: e8157efdf967
Create Date: 2026-11-29 23:31:29.512096
"""

import sqlalchemy as sa
from alembic import op

revision = "3cc206e8d6f1"
down_revision = "e8157efdf967"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activations",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("backbone", sa.String(length=80), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["images.sha256"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "depth",
                sa.Enum("head", "deep", name="trainingdepth", native_enum=False, length=20),
                server_default="head",
                nullable=False,
            )
        )

    with op.batch_alter_table("tag_votes", schema=None) as batch_op:
        batch_op.create_index("ix_tag_votes_user_created", ["user_id", "created_at"], unique=False)

    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("approved_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_tags_parent_id", "tags", ["parent_id"], ["id"], ondelete="SET NULL")
        batch_op.create_foreign_key(
            "fk_tags_approved_by_id", "users", ["approved_by_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("private_photos_teach", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("private_photos_teach")

    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tags_approved_by_id", type_="foreignkey")
        batch_op.drop_constraint("fk_tags_parent_id", type_="foreignkey")
        batch_op.drop_column("approved_by_id")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("parent_id")

    with op.batch_alter_table("tag_votes", schema=None) as batch_op:
        batch_op.drop_index("ix_tag_votes_user_created")

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("depth")

    op.drop_table("activations")
