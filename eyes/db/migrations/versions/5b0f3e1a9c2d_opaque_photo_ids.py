"""unguessable photo names: public_id and media_key; photo ids never reused on SQLite

Revision ID: 5b0f3e1a9c2d
Revises: 3cc206e8d6f1
Create Date: 2026-11-30 02:50:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "5b0f3e1a9c2d"
down_revision = "3cc206e8d6f1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=22), nullable=True))
        batch_op.add_column(sa.Column("media_key", sa.String(length=22), nullable=True))

    photos = sa.table("photos", sa.column("id", sa.Integer), sa.column("public_id"), sa.column("media_key"))
    bind = op.get_bind()
    for (photo_id,) in bind.execute(sa.select(photos.c.id)).all():
        bind.execute(
            photos.update()
            .where(photos.c.id == photo_id)
            .values(public_id=secrets.token_urlsafe(16), media_key=secrets.token_urlsafe(16))
        )

    # On SQLite the copy also makes the table AUTOINCREMENT: a deleted photo's id is never reused.
    with op.batch_alter_table(
        "photos",
        schema=None,
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch_op:
        batch_op.alter_column("public_id", existing_type=sa.String(length=22), nullable=False)
        batch_op.alter_column("media_key", existing_type=sa.String(length=22), nullable=False)
        batch_op.create_unique_constraint("uq_photos_public_id", ["public_id"])
        batch_op.create_unique_constraint("uq_photos_media_key", ["media_key"])


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_constraint("uq_photos_media_key", type_="unique")
        batch_op.drop_constraint("uq_photos_public_id", type_="unique")
        batch_op.drop_column("media_key")
        batch_op.drop_column("public_id")
