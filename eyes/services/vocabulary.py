"""Which tags the network learns: the tag hierarchy, and administrators' approval of new classes.

A tag can have a parent (`granny-smith` under `apple`): a label for the child is a label for the
parent, and a "no" for the parent is a "no" for every child. A tag becomes a class once it has
enough training-grade photos from enough owners, and an administrator approved it (or the
champion already knows it, or the community is trusted with EYES_OPEN_VOCABULARY).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from eyes.context import Context
from eyes.db.models import Tag
from eyes.db.session import transaction
from eyes.domain import Account
from eyes.errors import BadRequest, Forbidden
from eyes.services import label_clock
from eyes.services.tags import normalize_tag, tag_ids


class Hierarchy:
    """Parents of tags by name, with their ancestors and descendants."""

    def __init__(self, parents: dict[str, str]) -> None:
        self.parents = parents
        self._children: dict[str, set[str]] = defaultdict(set)
        for child, parent in parents.items():
            self._children[parent].add(child)

    def ancestors(self, name: str) -> list[str]:
        out: list[str] = []
        while (name := self.parents.get(name, "")) and name not in out:  # a cycle stops the walk
            out.append(name)
        return out

    def descendants(self, name: str) -> set[str]:
        out: set[str] = set()
        todo = [name]
        while todo:
            for child in self._children.get(todo.pop(), ()):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return out

    def reach(self) -> int:
        """The most labels one decision makes: a yes for a tag is a yes for its ancestors, and a
        no for a tag a no for its descendants."""
        names = set(self.parents) | set(self._children)
        return 1 + max((max(len(self.ancestors(n)), len(self.descendants(n))) for n in names), default=0)

    def expand(self, names: set[str]) -> set[str]:
        """The tags and all their ancestors: what a positive label implies."""
        return names.union(*(self.ancestors(n) for n in names)) if names else set()


def hierarchy(session: Session) -> Hierarchy:
    parent = aliased(Tag)
    rows = session.execute(select(Tag.name, parent.name).join(parent, parent.id == Tag.parent_id))
    return Hierarchy({child: parent_name for child, parent_name in rows})


def approved_tags(session: Session) -> set[str]:
    return set(session.scalars(select(Tag.name).where(Tag.approved_at.is_not(None))))


def _require_admin(user: Account | None) -> None:
    """`None` is the operator at the command line, who holds the server's keys anyway."""
    if user is not None and not user.is_admin:
        raise Forbidden("only an administrator can change which tags the network learns")


def approve(ctx: Context, admin: Account | None, names: list[str], approved: bool = True) -> list[str]:
    """Approve (or withdraw approval of) tags as classes; returns the normalised names."""
    _require_admin(admin)
    clean = sorted({normalize_tag(n, ctx.settings.max_tag_length) for n in names})
    if not clean:
        raise BadRequest("name at least one tag to approve")
    with transaction(ctx.sessions) as session:
        ids = tag_ids(session, set(clean))
        session.execute(
            update(Tag)
            .where(Tag.id.in_(ids.values()))
            .values(
                approved_at=datetime.now(UTC) if approved else None,
                approved_by_id=admin.id if approved and admin else None,
            )
        )
        label_clock.tick(session)
    return clean


def set_parent(ctx: Context, admin: Account | None, child: str, parent: str | None) -> None:
    """Put `child` under `parent` (None: at the top). Refuses a cycle."""
    _require_admin(admin)
    limit = ctx.settings.max_tag_length
    child = normalize_tag(child, limit)
    with transaction(ctx.sessions) as session:
        _set_parents(session, {child: normalize_tag(parent, limit) if parent else None})


def import_hierarchy(ctx: Context, admin: Account | None, text: str) -> int:
    """Parents from a CSV whose first column is the tag and the second its parent (a header row
    is skipped; further columns are further ancestors, as in grocery's classes.csv:
    `class,coarse_class,category`). Returns the number of tags given a parent."""
    _require_admin(admin)
    limit = ctx.settings.max_tag_length
    parents: dict[str, str | None] = {}
    rows = list(csv.reader(io.StringIO(text)))
    for i, row in enumerate(rows):
        cells = [c for c in row if c.strip()]
        if len(cells) < 2:
            continue
        try:
            names = [normalize_tag(c, limit) for c in cells]
        except BadRequest as err:
            if i == 0:
                continue  # a header row
            raise BadRequest(f"line {i + 1}: {err.message}") from None
        if i == 0 and len(rows) > 1 and names[0] in ("class", "tag", "name", "child"):
            continue
        # `Avocado,Avocado,Fruit`: a fine class named like its coarse class is one tag.
        names = [n for j, n in enumerate(names) if j == 0 or n != names[j - 1]]
        for child, parent in zip(names, names[1:], strict=False):
            if parents.get(child, parent) != parent:
                raise BadRequest(
                    f"line {i + 1}: {child!r} has two parents, {parents[child]!r} and {parent!r}"
                )
            parents[child] = parent
    if not parents:
        raise BadRequest("no 'tag,parent' rows found in the file")
    with transaction(ctx.sessions) as session:
        _set_parents(session, parents)
    return len(parents)


def _set_parents(session: Session, parents: dict[str, str | None]) -> None:
    label_clock.tick(session)
    ids = tag_ids(session, set(parents) | {p for p in parents.values() if p})
    current = hierarchy(session).parents
    merged = {**current, **{c: p for c, p in parents.items() if p}}
    for c, p in parents.items():
        if p is None:
            merged.pop(c, None)
    for child in parents:
        seen = {child}
        name = merged.get(child)
        while name:
            if name in seen:
                raise BadRequest(f"{child!r} cannot sit under {merged[child]!r}: that would make a cycle")
            seen.add(name)
            name = merged.get(name)
    for child, parent in parents.items():
        session.execute(
            update(Tag).where(Tag.id == ids[child]).values(parent_id=ids[parent] if parent else None)
        )
    # A parent an administrator names is a class they want learnt: it needs no second approval.
    named = [ids[p] for p in parents.values() if p]
    session.execute(
        update(Tag).where(Tag.id.in_(named), Tag.approved_at.is_(None)).values(approved_at=datetime.now(UTC))
    )


def tags_overview(ctx: Context) -> list[dict[str, object]]:
    with ctx.sessions() as session:
        return list_tags(session)


def list_tags(session: Session) -> list[dict[str, object]]:
    """Every tag with its parent and approval: what administrators manage on /models."""
    parent = aliased(Tag)
    rows = session.execute(
        select(Tag.name, parent.name, Tag.approved_at)
        .outerjoin(parent, parent.id == Tag.parent_id)
        .order_by(Tag.name)
    )
    return [{"name": n, "parent": p, "approved": a is not None} for n, p, a in rows]
