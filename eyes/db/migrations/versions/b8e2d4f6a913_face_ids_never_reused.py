"""face ids never reused: SQLite gives the faces table AUTOINCREMENT, as photos have (a plain
rowid table gives a deleted newest face's id to the next face: a grouping that remembers the
newest face it saw would skip it, and a face picture kept by its id would show the deleted face)

Revision ID: b8e2d4f6a913
Revises: a9c3e5f7b214
Create Date: 2026-11-30 14:00:00
"""

from alembic import op

revision = "b8e2d4f6a913"
down_revision = "a9c3e5f7b214"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's sequence never gives an id twice
    with op.batch_alter_table("faces", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("faces", recreate="always"):
        pass
