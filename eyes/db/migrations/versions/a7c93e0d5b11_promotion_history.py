"""promotion history, which rollback walks back

Revision ID: a7c93e0d5b11
Revises: 8d41c7b2e6a0
Create Date: 2026-11-30 03:30:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "a7c93e0d5b11"
down_revision = "8d41c7b2e6a0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    promotions = op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    # What the serving row remembers becomes the start of the history: previous, then current.
    serving = (
        op.get_bind().execute(sa.text("SELECT version_id, previous_id FROM serving WHERE id = 1")).first()
    )
    if serving is not None:
        now = datetime.now(UTC)
        rows = [{"version_id": v, "promoted_at": now} for v in (serving[1], serving[0]) if v is not None]
        if rows:
            op.bulk_insert(promotions, rows)


def downgrade() -> None:
    op.drop_table("promotions")
