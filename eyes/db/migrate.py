"""Bring a database to the newest schema with Alembic (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


@cache
def newest_revision() -> str | None:
    """The head of the migration scripts (reading them all takes 25 ms; they do not change while
    the process runs)."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty one."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration not yet applied. Safe to run at every start.

    SQLite alters a table by copying it and dropping the old one; with foreign keys on, that drop
    deletes every row that refers to the table (ON DELETE CASCADE: altering `users` emptied
    `photos`). So they are off while migrating, as SQLite's manual prescribes, and checked before
    the migration commits."""
    if revision == "head" and schema_revision(engine) == newest_revision():
        return  # the usual start: nothing to apply, and no migration script to load
    config = alembic_config(engine)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:  # outside any transaction, or SQLite ignores it
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                    raise RuntimeError(f"the migration broke {len(broken)} references, e.g. {broken[0]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def make_revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the models (a developer's tool: `python -m eyes.db.migrate`)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    import sys

    from eyes.db.session import make_engine

    make_revision(make_engine(sys.argv[1]), sys.argv[2])
