"""albums: a user's photos in an order of their choosing, each album with its own visibility

Revision ID: c2a1ea33805f
Revises: e5a1b7c3d902
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c2a1ea33805f"
down_revision = "e5a1b7c3d902"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "albums",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=22), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "visibility",
            sa.Enum("public", "unlisted", "private", name="visibility", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("cover_photo_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cover_photo_id"], ["photos.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id", name="uq_albums_public_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_albums_owner_id", "albums", ["owner_id"], unique=False)
    op.create_index("ix_albums_visibility_id", "albums", ["visibility", "id"], unique=False)
    op.create_table(
        "album_photos",
        sa.Column("album_id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["album_id"], ["albums.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("album_id", "photo_id"),
        sa.UniqueConstraint("album_id", "position", name="uq_album_photos_position"),
    )
    op.create_index("ix_album_photos_photo_id", "album_photos", ["photo_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_album_photos_photo_id", table_name="album_photos")
    op.drop_table("album_photos")
    op.drop_index("ix_albums_visibility_id", table_name="albums")
    op.drop_index("ix_albums_owner_id", table_name="albums")
    op.drop_table("albums")
