"""setup links are marked, so that they die when the platform has an administrator

Revision ID: e5a1b7c3d902
Revises: c2e8f4a19d37
Create Date: 2026-11-30 04:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e5a1b7c3d902"
down_revision = "c2e8f4a19d37"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("setup", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Unused links that no administrator made were setup links; none may outlive an administrator.
    op.execute("DELETE FROM invitations WHERE created_by_id IS NULL AND admin AND used_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("setup")
