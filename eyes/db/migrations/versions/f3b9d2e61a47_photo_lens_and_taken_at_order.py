"""a photo's lens (EXIF), and an index for feeds in the order photos were taken

Revision ID: f3b9d2e61a47
Revises: f3b9d1c6a842
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f3b9d2e61a47"
down_revision = "f3b9d1c6a842"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lens", sa.String(length=200), nullable=False, server_default=""))
        batch_op.create_index("ix_photos_visibility_taken_at_id", ["visibility", "taken_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index("ix_photos_visibility_taken_at_id")
        batch_op.drop_column("lens")
