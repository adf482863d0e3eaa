"""face groupings: per owner, the newest face their last grouping saw and when it ran (so a scan
groups again only when something is new, at most so often for a large collection, and the sweep
catches up on the rest)

Revision ID: a9c3e5f7b214
Revises: d5f1c8a3e720
Create Date: 2026-11-30 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "a9c3e5f7b214"
down_revision = "d5f1c8a3e720"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_groupings",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("through_face_id", sa.Integer(), nullable=False),
        sa.Column("grouped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owner_id"),
    )


def downgrade() -> None:
    op.drop_table("face_groupings")
