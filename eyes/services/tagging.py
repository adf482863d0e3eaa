"""Auto-tagging: embed each photo once, store the embedding (and the activation a fine-tuned top
starts from), store the champion's suggestions. Re-tagging reads what is stored, never the original."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from PIL.Image import DecompressionBombError
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Activation, Embedding, Image, Photo, PhotoTag
from eyes.db.session import insert_ignoring_duplicates, transaction, upsert
from eyes.domain import TaggingState, TagSource, TagStatus
from eyes.errors import EyesError, NotFound
from eyes.images import pixel_count
from eyes.ml.predictor import Champion, Suggestion
from eyes.services.image_store import original_key
from eyes.services.tags import tag_ids

log = logging.getLogger(__name__)
BATCH = 64
Features = tuple[np.ndarray, np.ndarray]  # an image's embedding and activation
RETAG_CHUNK = 2000


def pending_photo_ids(ctx: Context, limit: int = 10_000) -> list[int]:
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Photo.id).where(Photo.tagging == TaggingState.PENDING).order_by(Photo.id).limit(limit)
            )
        )


def tag_photo(ctx: Context, photo_id: int) -> None:
    tag_photos(ctx, [photo_id])


def tag_photos(
    ctx: Context, photo_ids: Sequence[int], inputs: Mapping[int, np.ndarray] | None = None
) -> None:
    """Tag the photos that are still pending, in batches. Safe to run twice or concurrently.

    `inputs`: the network's input of some of these photos, by photo id, when the caller has just
    decoded them (a bulk import): those are not read and decoded again."""
    for start in range(0, len(photo_ids), BATCH):
        with ctx.sessions() as session:
            rows = session.execute(
                select(Photo.id, Photo.sha256).where(
                    Photo.id.in_(photo_ids[start : start + BATCH]),
                    Photo.tagging == TaggingState.PENDING,
                )
            ).all()
        if not rows:
            continue
        given = {sha: inputs[pid] for pid, sha in rows if inputs and pid in inputs}
        vectors, failures = embeddings_for(ctx, sorted({sha for _, sha in rows}), given)
        ready = [(pid, sha) for pid, sha in rows if sha in vectors]
        suggestions = _suggest(ctx, [sha for _, sha in ready], vectors)
        with transaction(ctx.sessions) as session:
            # Only photos still there and still pending (a photo deleted meanwhile is skipped).
            # A write first: it locks the rows on PostgreSQL and takes SQLite's write lock, so
            # neither a delete nor a second job for the same photo can slip in before the commit.
            alive = set(
                session.scalars(
                    update(Photo)
                    .where(Photo.id.in_([pid for pid, _ in rows]), Photo.tagging == TaggingState.PENDING)
                    .values(tagging=Photo.tagging)
                    .returning(Photo.id)
                    .execution_options(synchronize_session=False)
                )
            )
            done = [pid for pid, _ in ready if pid in alive]
            by_photo = {pid: tags for (pid, _), tags in zip(ready, suggestions, strict=True)}
            replace_suggestions(session, done, by_photo)
            states = [{"id": pid, "tagging": TaggingState.DONE, "tagging_error": ""} for pid in done] + [
                {"id": pid, "tagging": TaggingState.UNTAGGABLE, "tagging_error": failures[sha]}
                for pid, sha in rows
                if sha in failures and pid in alive
            ]
            if states:
                session.execute(update(Photo), states)


def _suggest(ctx: Context, shas: list[str], vectors: dict[str, np.ndarray]) -> list[list[Suggestion]]:
    if not shas:
        return []
    champion = ctx.tagger.champion()
    return ctx.tagger.suggest(
        np.stack([vectors[sha] for sha in shas]), _activations(ctx, shas, champion), champion
    )


def _stored(ctx: Context, table: Any, column: Any, shas: list[str], dtype: str) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with ctx.sessions() as session:
        for start in range(0, len(shas), 500):
            for sha, data in session.execute(
                select(table.sha256, column).where(
                    table.sha256.in_(shas[start : start + 500]), table.backbone == ctx.tagger.backbone_id
                )
            ):
                found[sha] = np.frombuffer(data, dtype=dtype)
    return found


def activations_for(ctx: Context, shas: list[str]) -> dict[str, np.ndarray]:
    """The stored activation of each image (float16, the backbone card's shape); images embedded
    before activations were kept are decoded once more, and their activations stored."""
    shape = ctx.tagger.activation_shape
    found = _stored(ctx, Activation, Activation.data, shas, "<f2")
    missing = [sha for sha in shas if sha not in found]
    if missing:
        _compute(ctx, missing, {}, {})
        found |= _stored(ctx, Activation, Activation.data, missing, "<f2")
    return {sha: a.reshape(shape) for sha, a in found.items()}


def embeddings_for(
    ctx: Context, shas: list[str], given: Mapping[str, np.ndarray] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The stored embedding of each image, computing (and storing, with its activation) the
    missing ones, from `given` (the network's input by sha256) where there is one. Returns the
    vectors by sha256, and the reason for each image the network could not read."""
    vectors = _stored(ctx, Embedding, Embedding.vector, shas, "<f4")
    failures: dict[str, str] = {}
    _compute(ctx, [sha for sha in shas if sha not in vectors], vectors, failures, given)
    return vectors, failures


def _compute(
    ctx: Context,
    missing: list[str],
    vectors: dict[str, np.ndarray],
    failures: dict[str, str],
    given: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Decode (unless `given`), embed and store these images: embedding and activation, in one pass."""
    tagger = ctx.tagger
    for start in range(0, len(missing), BATCH):
        inputs: list[np.ndarray] = []
        loaded: list[str] = []
        for sha in missing[start : start + BATCH]:
            if given and sha in given:
                inputs.append(given[sha])
                loaded.append(sha)
                continue
            # A store that cannot be reached (or any other fault of the platform) raises: the job
            # fails, the photo stays pending and the sweep tries again. Only the image itself
            # can make a photo untaggable: bytes the network cannot read, or an original gone.
            try:
                with ctx.blobs.open(original_key(sha)) as blob:
                    data = blob.read()
            except NotFound as exc:
                log.warning("the original of %s is missing: %s", sha, exc)
                failures[sha] = "the original file is missing from the store"
                continue
            try:
                # Background work waits its turn for decoding memory as long as it takes.
                with ctx.limits.decoding.hold(pixel_count(data), patient=True):
                    inputs.append(tagger.prepare(io.BytesIO(data)))
                loaded.append(sha)
            except (OSError, ValueError, DecompressionBombError, EyesError) as exc:
                log.warning("cannot prepare %s for the network: %s", sha, exc)
                failures[sha] = f"the network cannot read this image ({exc})"
            finally:
                del data
        if not loaded:
            continue
        computed, activations = tagger.embed_with_activations(np.stack(inputs))
        vectors.update(zip(loaded, computed, strict=True))
        store_features(ctx, dict(zip(loaded, zip(computed, activations, strict=True), strict=True)))


def store_features(ctx: Context, features: Mapping[str, Features]) -> None:
    """Store the embedding and activation of each image (by sha256) that is still stored."""
    backbone = ctx.tagger.backbone_id
    rows, act_rows = [], []
    for sha, (vector, activation) in features.items():
        rows.append({"sha256": sha, "backbone": backbone, "vector": vector.astype("<f4").tobytes()})
        act_rows.append({"sha256": sha, "backbone": backbone, "data": activation.astype("<f2").tobytes()})
    # Upserts: a row from an older backbone (exported before activations were kept, say) is
    # replaced, not kept beside a new one that would then be computed again on every read.
    with transaction(ctx.sessions) as session:
        # Only for images still stored (the last photo of one may have been deleted meanwhile),
        # locked until the commit (see image_store.claim).
        kept = set(
            session.scalars(
                update(Image)
                .where(Image.sha256.in_(list(features)))
                .values(size_bytes=Image.size_bytes)
                .returning(Image.sha256)
                .execution_options(synchronize_session=False)
            )
        )
        upsert(session, Embedding.__table__, [r for r in rows if r["sha256"] in kept], "sha256")
        upsert(session, Activation.__table__, [r for r in act_rows if r["sha256"] in kept], "sha256")


def replace_suggestions(
    session: Session,
    photo_ids: list[int],
    suggestions: dict[int, list[Suggestion]],
) -> None:
    """Replace these photos' open model suggestions with new ones, in bulk.

    Tags a person set, confirmed or rejected are never touched, and never suggested again."""
    if not photo_ids:
        return
    session.execute(
        delete(PhotoTag).where(
            PhotoTag.photo_id.in_(photo_ids),
            PhotoTag.source == TagSource.MODEL,
            PhotoTag.status == TagStatus.SUGGESTED,
        )
    )
    decided = {
        (photo_id, tag_id)
        for photo_id, tag_id in session.execute(
            select(PhotoTag.photo_id, PhotoTag.tag_id).where(PhotoTag.photo_id.in_(photo_ids))
        )
    }
    ids = tag_ids(session, {s.name for pid in photo_ids for s in suggestions.get(pid, [])})
    now = datetime.now(UTC)
    rows = []
    uncertainty = []
    for photo_id in photo_ids:
        tags = suggestions.get(photo_id, [])
        uncertainty.append({"b_id": photo_id, "b_uncertainty": 1.0 - (tags[0].confidence if tags else 0.0)})
        for s in tags:
            tag_id = ids[s.name]
            if (photo_id, tag_id) in decided:
                continue
            decided.add((photo_id, tag_id))
            rows.append(
                {
                    "photo_id": photo_id,
                    "tag_id": tag_id,
                    "source": TagSource.MODEL,
                    "status": TagStatus.SUGGESTED,
                    "model_version": s.model_version,
                    "confidence": float(s.confidence),
                    "created_at": now,
                    "updated_at": now,
                }
            )
    insert_ignoring_duplicates(session, PhotoTag.__table__, rows)
    # One executemany on the table: the ORM's bulk update by primary key costs ten times more.
    table = cast(Table, Photo.__table__)
    session.execute(
        update(table).where(table.c.id == bindparam("b_id")).values(uncertainty=bindparam("b_uncertainty")),
        uncertainty,
    )


def _embedding_chunks(ctx: Context, backbone: str) -> Iterator[tuple[list[str], np.ndarray]]:
    """Every stored embedding, in chunks of bounded size, by keyset on the content hash."""
    after = ""
    while True:
        with ctx.sessions() as session:
            rows = session.execute(
                select(Embedding.sha256, Embedding.vector)
                .where(Embedding.backbone == backbone, Embedding.sha256 > after)
                .order_by(Embedding.sha256)
                .limit(RETAG_CHUNK)
            ).all()
        if not rows:
            return
        after = rows[-1][0]
        yield (
            [r[0] for r in rows],
            np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1),
        )


def _activations(ctx: Context, shas: list[str], champion: Champion) -> np.ndarray | None:
    """The chunk's stored activations, when the champion runs on them (a deep version)."""
    if not champion.needs_activations:
        return None
    stored = activations_for(ctx, shas)
    return np.stack([stored[sha] for sha in shas])


def _suggested_chunks(ctx: Context) -> Iterator[tuple[list[str], list[list[Suggestion]]]]:
    """Each chunk of stored embeddings with the champion's suggestions, computed one chunk ahead
    in a second thread: the matrix products release the GIL, so the next chunk's scores are
    computed while the caller writes this one's rows."""
    tagger = ctx.tagger

    def score(chunk: tuple[list[str], np.ndarray]) -> tuple[list[str], list[list[Suggestion]]]:
        shas, vectors = chunk
        champion = tagger.champion()
        return shas, tagger.suggest(vectors, _activations(ctx, shas, champion), champion)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="retag") as pool:
        ahead: Future[tuple[list[str], list[list[Suggestion]]]] | None = None
        for chunk in _embedding_chunks(ctx, tagger.backbone_id):
            following = pool.submit(score, chunk)
            if ahead is not None:
                yield ahead.result()
            ahead = following
        if ahead is not None:
            yield ahead.result()


def retag_all(ctx: Context) -> int:
    """Recompute every tagged photo's suggestions from its stored embedding (after a promotion).

    Streams in chunks, so memory stays bounded however many photos there are. Returns the count."""
    ctx.tagger.refresh(force=True)
    done = 0
    for shas, suggestions in _suggested_chunks(ctx):
        by_sha = dict(zip(shas, suggestions, strict=True))
        with transaction(ctx.sessions) as session:
            photos = session.execute(  # a write first, to lock (see tag_photos)
                update(Photo)
                .where(Photo.sha256.in_(shas), Photo.tagging == TaggingState.DONE)
                .values(tagging=Photo.tagging)
                .returning(Photo.id, Photo.sha256)
                .execution_options(synchronize_session=False)
            ).all()
            if not photos:
                continue
            replace_suggestions(
                session,
                [pid for pid, _ in photos],
                {pid: by_sha[sha] for pid, sha in photos},
            )
        done += len(photos)
    return done
