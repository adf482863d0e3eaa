"""face models: per-owner versions of the face recognition model (threshold, training set,
figures on the owner's confirmed faces, the gate's verdict)

Revision ID: d5f1c8a3e720
Revises: c7e4a9d2b613
Create Date: 2026-11-30 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "d5f1c8a3e720"
down_revision = "c7e4a9d2b613"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "stage",
            sa.Enum(
                "training",
                "candidate",
                "champion",
                "retired",
                "rejected",
                "failed",
                name="modelstage",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("calibration", sa.Text(), nullable=False),
        sa.Column("training_set", sa.Text(), nullable=False),
        sa.Column("n_faces", sa.Integer(), nullable=False),
        sa.Column("n_people", sa.Integer(), nullable=False),
        sa.Column("n_rejections", sa.Integer(), nullable=False),
        sa.Column("n_held_out", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("baseline_accuracy", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "version"),
    )
    op.create_index("ix_face_models_owner_id", "face_models", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_face_models_owner_id", table_name="face_models")
    op.drop_table("face_models")
