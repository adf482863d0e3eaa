"""Upgrading keeps every row: a schema change must never cost a user their photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from eyes.db.migrate import newest_revision, schema_revision, upgrade
from eyes.db.session import make_engine

# A platform as it stood at this revision: an owner, a photo, a tag on it and a vote.
OLD_REVISION = "e8157efdf967"
ROWS = [
    "INSERT INTO users (id, username, password_hash, is_admin, created_at)"
    " VALUES (1, 'ada', 'x', true, '2026-01-01'), (2, 'bob', 'x', false, '2026-01-01')",
    "INSERT INTO images (sha256, format, width, height, size_bytes, created_at)"
    " VALUES ('ab12', 'jpeg', 4, 3, 100, '2026-01-01')",
    "INSERT INTO photos (id, owner_id, sha256, title, description, visibility, original_filename,"
    " camera, tagging, tagging_error, created_at)"
    " VALUES (7, 1, 'ab12', 'a cat', '', 'unlisted', 'cat.jpg', '', 'done', '', '2026-01-01')",
    "INSERT INTO tags (id, name) VALUES (3, 'cat')",
    "INSERT INTO photo_tags (id, photo_id, tag_id, source, status, created_at, updated_at)"
    " VALUES (1, 7, 3, 'user', 'confirmed', '2026-01-01', '2026-01-01')",
    "INSERT INTO tag_votes (id, photo_id, tag_id, user_id, agrees, created_at)"
    " VALUES (1, 7, 3, 2, true, '2026-01-01')",
]
COUNTED = ["users", "images", "photos", "tags", "photo_tags", "tag_votes"]


def test_upgrading_an_old_database_keeps_every_row(tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, OLD_REVISION)
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
        before = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in COUNTED}

    upgrade(engine)

    with engine.connect() as connection:
        after = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in COUNTED}
        title, visibility = connection.execute(
            text("SELECT title, visibility FROM photos WHERE id = 7")
        ).one()
    assert (
        after == before == {"users": 2, "images": 1, "photos": 1, "tags": 1, "photo_tags": 1, "tag_votes": 1}
    )
    assert (title, visibility) == ("a cat", "unlisted")
    engine.dispose()


def test_the_models_match_the_migrations(tmp_path: Path, database_url: str) -> None:
    """What the code expects is what the migrations build: autogenerate finds nothing to add."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from eyes.db.models import Base

    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_a_start_at_the_newest_schema_applies_nothing_and_an_older_one_is_upgraded(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every start calls upgrade: at the newest schema it must not load the migration scripts
    (25 ms a start), and a database one revision behind must still be brought up to date."""
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'eyes.db'}")
    upgrade(engine, OLD_REVISION)
    assert schema_revision(engine) == OLD_REVISION
    upgrade(engine)
    assert schema_revision(engine) == newest_revision() is not None

    def no_scripts(*args: object, **kwargs: object) -> None:
        raise AssertionError("the migration scripts were run")

    monkeypatch.setattr(command, "upgrade", no_scripts)
    upgrade(engine)  # at the newest schema: nothing to apply
    engine.dispose()
