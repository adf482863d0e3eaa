"""people: the persons an owner names, who may see them, rejected names, and per-face names,
suggestions, groups and "not a face"

Revision ID: c7e4a9d2b613
Revises: b4d7e2f9a310
Create Date: 2026-11-30 08:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c7e4a9d2b613"
down_revision = "b4d7e2f9a310"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column(
            "audience",
            sa.Enum("owner", "chosen", "viewers", name="personaudience", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "slug"),
    )
    op.create_index("ix_people_owner_id", "people", ["owner_id"])
    op.create_table(
        "person_viewers",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id", "user_id"),
    )
    op.create_index("ix_person_viewers_user_id", "person_viewers", ["user_id"])
    op.create_table(
        "face_rejections",
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["face_id"], ["faces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("face_id", "person_id"),
    )
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("suggested_person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("suggestion_distance", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("not_a_face", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(
            "fk_faces_person_id", "people", ["person_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            "fk_faces_suggested_person_id", "people", ["suggested_person_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_faces_person_id", ["person_id"])


def downgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_index("ix_faces_person_id")
        batch_op.drop_constraint("fk_faces_suggested_person_id", type_="foreignkey")
        batch_op.drop_constraint("fk_faces_person_id", type_="foreignkey")
        batch_op.drop_column("not_a_face")
        batch_op.drop_column("group_id")
        batch_op.drop_column("suggestion_distance")
        batch_op.drop_column("suggested_person_id")
        batch_op.drop_column("person_id")
    op.drop_table("face_rejections")
    op.drop_index("ix_person_viewers_user_id", table_name="person_viewers")
    op.drop_table("person_viewers")
    op.drop_index("ix_people_owner_id", table_name="people")
    op.drop_table("people")
