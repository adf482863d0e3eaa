"""photos carry a licence chosen by their owner; users have a default licence for new uploads

Revision ID: f3b9d2c8a611
Revises: f3b9d2e61a47
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f3b9d2c8a611"
down_revision = "f3b9d2e61a47"
branch_labels = None
depends_on = None

# Every existing photo keeps all its rights: an owner opens a licence, nobody does it for them.
_LICENSE = sa.Enum(
    "all-rights-reserved", "cc0", "cc-by", "cc-by-sa", name="license", native_enum=False, length=20
)


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("license", _LICENSE, server_default="all-rights-reserved", nullable=False)
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("default_license", _LICENSE, server_default="all-rights-reserved", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("default_license")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("license")
