"""the label clock counts labels decided one by one, apart from the changes that can move any number

Revision ID: d4a9c1e7f302
Revises: b8e2d4f6a913
Create Date: 2026-12-08 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "d4a9c1e7f302"
down_revision = "b8e2d4f6a913"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label_clock") as batch:
        batch.add_column(sa.Column("decisions", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("label_clock") as batch:
        batch.drop_column("decisions")
