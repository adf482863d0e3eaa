"""the label clock: a counter the sweep reads instead of recounting every label

Revision ID: c2e8f4a19d37
Revises: a7c93e0d5b11
Create Date: 2026-11-30 03:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c2e8f4a19d37"
down_revision = "a7c93e0d5b11"
branch_labels = None
depends_on = None


def upgrade() -> None:
    clock = op.create_table(
        "label_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(clock, [{"id": 1, "ticks": 0}])


def downgrade() -> None:
    op.drop_table("label_clock")
