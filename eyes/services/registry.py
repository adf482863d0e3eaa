"""The model registry: immutable, checksummed versions in the blob store; one champion.

A version's files are `models/v<N>/head.npz`, `training-set.txt` (the content hashes it trained
on: the gate judges its successors on other photos), a deep run's `top.onnx` (the fine-tuned top of
the backbone) and `card.json`. The card carries everything about the version (vocabulary,
thresholds, metrics, the baseline, the gate's evidence, training set, backbone checksum, parent,
files and their checksums), so nothing lives only in the database. Promotion is a single update of the
`serving` row, so two promotions at once still leave exactly one champion.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from eyes.context import Context
from eyes.db.models import ModelVersion, Promotion, Serving, as_utc
from eyes.db.session import transaction
from eyes.domain import MAX_ID, Account, ModelStage, version_name
from eyes.errors import BadRequest, Conflict, NotFound
from eyes.ml.errors import ModelFileError
from eyes.ml.head import Head

USABLE = (ModelStage.CANDIDATE, ModelStage.CHAMPION, ModelStage.RETIRED, ModelStage.REJECTED)


def head_key(version_id: int) -> str:
    return f"models/{version_name(version_id)}/head.npz"


def card_key(version_id: int) -> str:
    return f"models/{version_name(version_id)}/card.json"


def file_key(version_id: int, name: str) -> str:
    return f"models/{version_name(version_id)}/{name}"


TRAINING_SET = "training-set.txt"
TOP_FILE = "top.onnx"


def parse_version(name: str) -> int:
    digits = name.lower().removeprefix("v")
    if not (digits.isascii() and digits.isdigit()):
        raise BadRequest(f"a model version looks like v3, not {name!r}")
    if not 1 <= int(digits) <= MAX_ID:
        raise NotFound(f"there is no model {name}; 'eyes models list' shows them")
    return int(digits)


def store_version_files(
    ctx: Context,
    version_id: int,
    head: Head,
    card: dict[str, Any],
    training_set: list[str],
    extra: dict[str, bytes],
) -> str:
    """Write the head, the training set, any extra files and, last, the card that vouches for
    them (each atomically); returns the head's sha256."""
    data = head.to_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    ctx.blobs.put_bytes(head_key(version_id), data)
    files = {TRAINING_SET: "\n".join(sorted(training_set)).encode(), **extra}
    for name, content in files.items():
        ctx.blobs.put_bytes(file_key(version_id, name), content)
    card = {
        **card,
        "version": version_name(version_id),
        "head_sha256": sha256,
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
    }
    ctx.blobs.put_bytes(card_key(version_id), json.dumps(card, indent=2, default=str).encode())
    return sha256


def load_file(ctx: Context, version: ModelVersion, name: str) -> bytes:
    """One of the version's files, checked against the checksum its card records."""
    expected = (load_card(ctx, version.id).get("files") or {}).get(name, "")
    return _read_checked(ctx, version, file_key(version.id, name), expected, f"the file {name}")


def _read_checked(ctx: Context, version: ModelVersion, key: str, sha256: str, what: str) -> bytes:
    """A version's file, or a clear error if it is missing or does not match its checksum."""
    try:
        with ctx.blobs.open(key) as f:
            data = f.read()
    except NotFound:
        raise ModelFileError(f"{what} of model {version.name} is missing from the store ({key})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelFileError(
            f"{what} of model {version.name} ({key}) does not match its checksum: the file is "
            "corrupt; roll back with 'eyes models rollback' or promote another version"
        )
    return data


def training_set(ctx: Context, version: ModelVersion) -> frozenset[str]:
    """The content hashes the version trained on (empty for versions made before this was kept)."""
    if TRAINING_SET not in (load_card(ctx, version.id).get("files") or {}):
        return frozenset()
    return frozenset(load_file(ctx, version, TRAINING_SET).decode().split())


def load_head(ctx: Context, version: ModelVersion) -> Head:
    """The version's head, refused with a clear error if it is unfinished, missing or altered."""
    if version.stage not in USABLE or not version.head_sha256:
        raise ModelFileError(f"model {version.name} is {version.stage.value}: it has no usable files")
    return Head.from_bytes(
        _read_checked(ctx, version, head_key(version.id), version.head_sha256, "the weights")
    )


def load_card(ctx: Context, version_id: int) -> dict[str, Any]:
    try:
        with ctx.blobs.open(card_key(version_id)) as f:
            return dict(json.load(f))
    except NotFound:
        return {}


def champion_id(ctx: Context) -> int | None:
    """The version in service (None: the day-one model)."""
    with ctx.sessions() as session:
        return _champion_id(session)


def get_version(ctx: Context, version_id: int) -> ModelVersion:
    """One version's row, read in a session of its own: detached, its columns loaded."""
    with ctx.sessions() as session:
        return _get_version(session, version_id)


def list_versions(ctx: Context) -> list[ModelVersion]:
    """Every version's row, newest first, with who made it: detached, as `get_version`'s."""
    with ctx.sessions() as session:
        return _list_versions(session)


def _champion_id(session: Session) -> int | None:
    return session.scalar(select(Serving.version_id).where(Serving.id == 1))


def _get_version(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"there is no model {version_name(version_id)}; 'eyes models list' shows them")
    return version


def _list_versions(session: Session) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion)
            .options(selectinload(ModelVersion.created_by))
            .order_by(ModelVersion.id.desc())
        )
    )


def promote(ctx: Context, version_id: int | None, reason: str = "") -> None:
    """Put `version_id` in service (None: the day-one model), atomically; the old champion retires.

    The first statement writes the serving row, so concurrent promotions queue on its lock
    instead of acting on a stale read; whichever runs last is the one champion."""
    if version_id is not None:
        load_head(ctx, get_version(ctx, version_id))  # refuse a version whose files are broken
    with transaction(ctx.sessions) as session:
        changed = session.execute(
            update(Serving)
            .where(Serving.id == 1, Serving.version_id.is_distinct_from(version_id))
            .values(previous_id=Serving.version_id, version_id=version_id, changed_at=datetime.now(UTC))
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            return
        session.add(Promotion(version_id=version_id))
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.stage == ModelStage.CHAMPION, ModelVersion.id.is_distinct_from(version_id))
            .values(stage=ModelStage.RETIRED)
        )
        if version_id is not None:
            values: dict[str, Any] = {"stage": ModelStage.CHAMPION}
            if reason:
                values["reason"] = reason
            session.execute(update(ModelVersion).where(ModelVersion.id == version_id).values(**values))
    if ctx.jobs is not None:
        ctx.jobs.enqueue("retag")


def rollback(ctx: Context) -> int | None:
    """Put back the champion before this one (the day-one model if there was none), walking the
    promotion history: what was rolled back is skipped, so each rollback goes one further back."""
    with transaction(ctx.sessions) as session:
        row = session.get(Serving, 1)
        if row is None or row.version_id is None:
            raise Conflict("there is nothing to roll back: the day-one model is in service")
        current = row.version_id
        session.execute(  # every promotion of the current version is rolled back
            update(Promotion)
            .where(Promotion.version_id == current, Promotion.rolled_back_at.is_(None))
            .values(rolled_back_at=datetime.now(UTC))
        )
        previous = session.scalar(
            select(Promotion.version_id)
            .where(Promotion.rolled_back_at.is_(None))
            .order_by(Promotion.id.desc())
            .limit(1)
        )
    promote(ctx, previous, reason="rolled back")
    return previous


def describe_versions(ctx: Context, *, admin: bool = True) -> list[dict[str, Any]]:
    """Every version, newest first, as /models and `eyes models list` show them."""
    with ctx.sessions() as session:
        champion = _champion_id(session)
        return [describe(v, champion, admin=admin) for v in _list_versions(session)]


def describe_version(ctx: Context, name: str | int, *, admin: bool = True) -> dict[str, Any]:
    """One version (`v3`, `3` or its id), as its page and `eyes models show` show it."""
    version_id = name if isinstance(name, int) else parse_version(name)
    with ctx.sessions() as session:
        return describe(_get_version(session, version_id), _champion_id(session), admin=admin)


def describe(version: ModelVersion, champion: int | None, *, admin: bool = True) -> dict[str, Any]:
    """Everything about a version. Why a run failed can name hosts, paths and internals: only
    administrators (and the command line) see it."""
    summary = json.loads(version.summary or "{}")
    creator: Account | None = version.created_by
    return {
        "version": version.name,
        "stage": version.stage.value,
        "champion": version.id == champion,
        "created_at": as_utc(version.created_at),
        "finished_at": as_utc(version.finished_at),
        "created_by": creator.username if creator else None,
        "trigger": version.trigger,
        "parent": version.parent,
        "reason": version.reason
        if admin or version.stage != ModelStage.FAILED
        else "the run failed; an administrator can see why",
        "head_sha256": version.head_sha256,
        **summary,
    }
