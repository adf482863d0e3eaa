"""moderation: sensitive-content scores and marks, reports, hidden photos, notices, suspensions

Revision ID: f3b9d1c6a842
Revises: c2a1ea33805f
Create Date: 2026-11-30 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f3b9d1c6a842"
down_revision = "c2a1ea33805f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch copy of `photos` would lose its AUTOINCREMENT.
    op.add_column(
        "users", sa.Column("show_sensitive", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("users", sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("images", sa.Column("sensitive_score", sa.Float(), nullable=True))
    op.add_column(
        "photos", sa.Column("marked_sensitive", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("photos", sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("photos", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_id", "reporter_id", name="uq_reports_photo_reporter"),
    )
    op.create_index("ix_reports_open", "reports", ["resolved_at", "photo_id"])
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notices_user_id", "notices", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_notices_user_id", table_name="notices")
    op.drop_table("notices")
    op.drop_index("ix_reports_reporter_id", table_name="reports")
    op.drop_index("ix_reports_open", table_name="reports")
    op.drop_table("reports")
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "photos", schema=None, table_kwargs={"sqlite_autoincrement": True} if sqlite else {}
    ) as batch_op:
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("hidden_at")
        batch_op.drop_column("marked_sensitive")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("sensitive_score")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("suspended_at")
        batch_op.drop_column("show_sensitive")
