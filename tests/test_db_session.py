"""The database helpers the services share, on SQLite and (in the PostgreSQL run) on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.orm import Session

from eyes.db.session import make_engine, one_of

HOSTILE = ["it's", 'say "no"', "back\\slash", "line\u2028break", "ünïcode 🐱", "", "%_", "a' OR '1'='1"]


def test_one_of_matches_exactly_the_values_given(tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'probe.db'}")
    table = Table("probe", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(64)))
    table.metadata.create_all(engine)
    names = [f"name {i}" for i in range(5000)] + HOSTILE
    with Session(engine) as session:
        session.execute(table.insert(), [{"id": i, "name": name} for i, name in enumerate(names)])
        wanted = names[::7] + HOSTILE + ["absent", "name 1 "]  # two that match nothing
        found = session.execute(select(table.c.name).where(one_of(session, table.c.name, wanted))).scalars()
        assert sorted(found) == sorted(set(names) & set(wanted))
        ids = session.execute(
            select(table.c.id).where(one_of(session, table.c.id, [3, 4999, 10**9]))
        ).scalars()
        assert sorted(ids) == [3, 4999]
        assert session.execute(select(table.c.id).where(one_of(session, table.c.id, []))).all() == []
    engine.dispose()
