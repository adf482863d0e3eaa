"""Engine and sessions, built on demand (never at import time)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Engine, any_, bindparam, create_engine, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed at the end, or rolled back on any error."""
    with factory() as session, session.begin():
        yield session


def insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL: for rows that two workers
    may write at once (the same image embedded twice is the same embedding)."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(), rows)


def upsert(
    session: Session,
    table: Any,
    rows: list[dict[str, Any]],
    key: str | tuple[str, ...],
    *,
    only_where: ColumnElement[bool] | None = None,
    insert_only: tuple[str, ...] = (),
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, on SQLite and PostgreSQL: a row computed again
    (by a new backbone, say) replaces the old one instead of being dropped. The key's columns are
    kept; so is a conflicting row that does not match `only_where`, and the `insert_only` columns
    of one that does (columns `only_where` already fixes: rewriting an indexed column, even to its
    own value, rewrites its index entries on SQLite)."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    keys = (key,) if isinstance(key, str) else key
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    changed = {name: statement.excluded[name] for name in rows[0] if name not in (*keys, *insert_only)}
    execute_many(
        session,
        statement.on_conflict_do_update(index_elements=list(keys), set_=changed, where=only_where),
        rows,
    )


FEW_ROWS = 200  # fewer rows than this: compiling the statement again costs more than it saves


def execute_many(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Run `statement` once per row (all with the same keys) in one executemany of the driver.

    The rows go to the driver as plain tuples, converted column by column, each distinct value by
    its column type's own bind processor once. SQLAlchemy's general path builds and converts every
    parameter of every row anew: three times the database's own work for the 275,000 suggestions
    of a re-tag (docs/benchmarks.md)."""
    if len(rows) < FEW_ROWS:  # SQLAlchemy's path keeps the compiled statement; this one compiles it
        session.execute(statement, rows)
        return
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    columns = []
    for name in names:
        bind = compiled.binds[name]
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name not in rows[0]:  # bound by the statement itself (its WHERE, say): one value
            columns.append([convert(bind.effective_value) if convert else bind.effective_value] * len(rows))
            continue
        values = [row[name] for row in rows]
        if convert is not None:
            converted: dict[Any, Any] = {}
            values = [
                None if v is None else converted[v] if v in converted else converted.setdefault(v, convert(v))
                for v in values
            ]
        columns.append(values)
    params: list[Any] = list(zip(*columns, strict=True))
    if not compiled.positional:
        params = [dict(zip(names, values, strict=True)) for values in params]
    connection.exec_driver_sql(compiled.string, params)


def one_of(session: Session, column: Any, values: Sequence[str] | Sequence[int]) -> ColumnElement[bool]:
    """`column IN values`, the values bound as one parameter: a JSON array read by `json_each` on
    SQLite, an array on PostgreSQL. An IN list binds each value apart, and for the 2,000 keys of
    a re-tag's chunk SQLAlchemy's Python work on them cost more than the statement itself."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    each = func.json_each(json.dumps(list(values))).table_valued("value")
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


def lock_rows(
    session: Session, touch: Any, *where: ColumnElement[bool], returning: tuple[Any, ...]
) -> list[Any]:
    """Lock the rows that match until the commit, and return their `returning` columns.

    A write that changes nothing: it locks the rows on PostgreSQL and takes SQLite's write lock,
    so neither a delete nor a second writer slips in between this read and the commit. `touch` is
    a column that no index covers: writing it costs no index update (on SQLite, writing an
    indexed column to itself rewrites its index entries: most of a re-tag's time)."""
    return list(
        session.execute(
            update(touch.class_)
            .where(*where)
            .values({touch: touch})
            .returning(*returning)
            .execution_options(synchronize_session=False)
        )
    )
