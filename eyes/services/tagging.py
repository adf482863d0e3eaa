"""Auto-tagging: embed each photo once, store the embedding (and the activation a fine-tuned top
starts from), store the champion's suggestions. Re-tagging reads what is stored, never the original."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from PIL.Image import DecompressionBombError
from sqlalchemy import ColumnElement, String, Table, bindparam, delete, select, type_coerce, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Activation, Embedding, Image, Photo, PhotoTag
from eyes.db.session import execute_many, lock_rows, one_of, transaction, upsert
from eyes.domain import TaggingState, TagSource, TagStatus
from eyes.errors import EyesError, NotFound
from eyes.images import pixel_count
from eyes.ml.predictor import Champion, Suggestion
from eyes.services.image_store import original_key
from eyes.services.serving import ModelInputs
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


def tag_photos(ctx: Context, photo_ids: Sequence[int], *, score_sensitive: bool = True) -> None:
    """Tag the photos that are still pending, in batches. Safe to run twice or concurrently.

    Each image is also scored for sensitive content, unless `score_sensitive` is False (a bulk
    import: the background job scores those afterwards)."""
    for start in range(0, len(photo_ids), BATCH):
        with ctx.sessions() as session:
            rows = session.execute(
                select(Photo.id, Photo.sha256).where(
                    Photo.id.in_(photo_ids[start : start + BATCH]),
                    _in_state(TaggingState.PENDING),
                )
            ).all()
        if not rows:
            continue
        vectors, failures = embeddings_for(ctx, sorted({sha for _, sha in rows}), score_sensitive)
        if score_sensitive:  # an upload embedded by its request: its score is still missing
            score_images(ctx, unscored_among(ctx, sorted(vectors)))
        ready = [(pid, sha) for pid, sha in rows if sha in vectors]
        suggestions = _suggest(ctx, [sha for _, sha in ready], vectors)
        with transaction(ctx.sessions) as session:
            # Only photos still there and still pending (a photo deleted meanwhile is skipped).
            # A write first: it locks the rows on PostgreSQL and takes SQLite's write lock, so
            # neither a delete nor a second job for the same photo can slip in before the commit.
            alive = {
                pid
                for (pid,) in lock_rows(
                    session,
                    Photo.title,
                    Photo.id.in_([pid for pid, _ in rows]),
                    _in_state(TaggingState.PENDING),
                    returning=(Photo.id,),
                )
            }
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


def _in_state(state: TaggingState) -> ColumnElement[bool]:
    """A state compared through an expression that no index covers, for statements that name their
    photos by id or content hash: SQLite keeps no statistics, and its planner would otherwise walk
    every photo in that state through ix_photos_tagging for each chunk (quadratic in a re-tag of
    100,000 photos) instead of looking the chunk's photos up by their keys."""
    return type_coerce(Photo.tagging, String).concat("") == state.value


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
    ctx: Context, shas: list[str], score_sensitive: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The stored embedding of each image, computing (and storing, with its activation and, unless
    told not to, its sensitive-content score) the missing ones from their originals. Returns the
    vectors by sha256, and the reason for each image the network could not read."""
    vectors = _stored(ctx, Embedding, Embedding.vector, shas, "<f4")
    failures: dict[str, str] = {}
    _compute(ctx, [sha for sha in shas if sha not in vectors], vectors, failures, score_sensitive)
    return vectors, failures


def _compute(
    ctx: Context,
    missing: list[str],
    vectors: dict[str, np.ndarray],
    failures: dict[str, str],
    score_sensitive: bool = True,
) -> None:
    """Decode, embed, score and store these images: embedding, activation and sensitive-content
    score, from one decode."""
    tagger = ctx.tagger
    for start in range(0, len(missing), BATCH):
        inputs: list[ModelInputs] = []
        loaded: list[str] = []
        for sha in missing[start : start + BATCH]:
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
                    inputs.append(tagger.prepare_inputs(io.BytesIO(data), sensitive=score_sensitive))
                loaded.append(sha)
            except (OSError, ValueError, DecompressionBombError, EyesError) as exc:
                log.warning("cannot prepare %s for the network: %s", sha, exc)
                failures[sha] = f"the network cannot read this image ({exc})"
            finally:
                del data
        if not loaded:
            continue
        computed, activations = tagger.embed_with_activations(np.stack([i.backbone for i in inputs]))
        vectors.update(zip(loaded, computed, strict=True))
        # Scored now where the caller prepared the input; the rest by the background job.
        to_score = [
            (sha, i.sensitive) for sha, i in zip(loaded, inputs, strict=True) if i.sensitive is not None
        ]
        scores = tagger.sensitive.scores(np.stack([x for _, x in to_score])) if to_score else np.zeros(0)
        store_features(
            ctx,
            dict(zip(loaded, zip(computed, activations, strict=True), strict=True)),
            {sha: float(p) for (sha, _), p in zip(to_score, scores, strict=True)},
        )


def store_features(
    ctx: Context, features: Mapping[str, Features], scores: Mapping[str, float] | None = None
) -> None:
    """Store the embedding and activation (and the sensitive-content score, where there is one) of
    each image (by sha256) that is still stored."""
    with transaction(ctx.sessions) as session:
        write_features(session, ctx.tagger.backbone_id, features, scores)


def write_features(
    session: Session,
    backbone: str,
    features: Mapping[str, Features],
    scores: Mapping[str, float] | None = None,
) -> None:
    """`store_features` in the caller's transaction (an upload's, which made the image rows)."""
    if not features:
        return
    rows, act_rows = [], []
    for sha, (vector, activation) in features.items():
        rows.append({"sha256": sha, "backbone": backbone, "vector": vector.astype("<f4").tobytes()})
        act_rows.append({"sha256": sha, "backbone": backbone, "data": activation.astype("<f2").tobytes()})
    # Only for images still stored (the last photo of one may have been deleted meanwhile),
    # locked until the commit (see image_store.claim).
    kept = {
        sha
        for (sha,) in lock_rows(
            session, Image.size_bytes, Image.sha256.in_(list(features)), returning=(Image.sha256,)
        )
    }
    # Upserts: a row from an older backbone (exported before activations were kept, say) is
    # replaced, not kept beside a new one that would then be computed again on every read.
    upsert(session, Embedding.__table__, [r for r in rows if r["sha256"] in kept], "sha256")
    upsert(session, Activation.__table__, [r for r in act_rows if r["sha256"] in kept], "sha256")
    write_sensitive_scores(session, {sha: p for sha, p in (scores or {}).items() if sha in kept})


def write_sensitive_scores(session: Session, scores: Mapping[str, float]) -> None:
    """Store each image's sensitive-content score (one executemany)."""
    if not scores:
        return
    table = cast(Table, Image.__table__)
    session.execute(
        update(table)
        .where(table.c.sha256 == bindparam("b_sha"))
        .values(sensitive_score=bindparam("b_score")),
        [{"b_sha": sha, "b_score": score} for sha, score in scores.items()],
    )


def unscored_among(ctx: Context, shas: Sequence[str]) -> list[str]:
    """Those of these images that have no sensitive-content score yet."""
    if not shas:
        return []
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Image.sha256).where(Image.sha256.in_(list(shas)), Image.sensitive_score.is_(None))
            )
        )


def unscored_images(ctx: Context, after: str = "", limit: int = BATCH) -> list[str]:
    """Images embedded before sensitive-content scores existed (a photo's first tagging scores
    it): by content hash, after `after`, so a sweep walks them once even where one fails."""
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Image.sha256)
                .join(Embedding, Embedding.sha256 == Image.sha256)
                .where(Image.sensitive_score.is_(None), Image.sha256 > after)
                .order_by(Image.sha256)
                .limit(limit)
            )
        )


def score_unscored(ctx: Context) -> int:
    """Score every stored image that has no sensitive-content score yet, decoding each original
    once (the resumable job behind the sweep: the NULL scores are what is left). Returns how many."""
    done, after = 0, ""
    while shas := unscored_images(ctx, after):
        after = shas[-1]
        done += score_images(ctx, shas)
    return done


def score_images(ctx: Context, shas: Sequence[str]) -> int:
    """Score these images for sensitive content from their stored originals; returns how many."""
    done = 0
    for start in range(0, len(shas), BATCH):
        inputs: list[np.ndarray] = []
        loaded: list[str] = []
        for sha in shas[start : start + BATCH]:
            try:
                with ctx.blobs.open(original_key(sha)) as blob:
                    data = blob.read()
                with ctx.limits.decoding.hold(pixel_count(data), patient=True):
                    inputs.append(ctx.tagger.prepare_sensitive(io.BytesIO(data)))
                loaded.append(sha)
            except (NotFound, OSError, ValueError, DecompressionBombError, EyesError) as exc:
                log.warning("cannot score %s for sensitive content: %s", sha, exc)
        if not loaded:
            continue
        scores = ctx.tagger.sensitive.scores(np.stack(inputs))
        with transaction(ctx.sessions) as session:
            write_sensitive_scores(session, dict(zip(loaded, map(float, scores), strict=True)))
        done += len(loaded)
    return done


def replace_suggestions(
    session: Session,
    photo_ids: list[int],
    suggestions: dict[int, list[Suggestion]],
) -> None:
    """Replace these photos' open model suggestions with new ones, in bulk.

    Tags a person set, confirmed or rejected are never touched, and never suggested again."""
    if not photo_ids:
        return
    ids = tag_ids(session, {s.name for pid in photo_ids for s in suggestions.get(pid, [])})
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    uncertainty = []
    for photo_id in photo_ids:
        tags = suggestions.get(photo_id, [])
        uncertainty.append({"b_id": photo_id, "b_uncertainty": 1.0 - (tags[0].confidence if tags else 0.0)})
        rows.extend(
            {
                "photo_id": photo_id,
                "tag_id": ids[s.name],
                "source": TagSource.MODEL,
                "status": TagStatus.SUGGESTED,
                "model_version": s.model_version,
                "confidence": float(s.confidence),
                "created_at": now,
                "updated_at": now,
            }
            for s in {s.name: s for s in reversed(tags)}.values()  # one per tag: the first one made
        )
    table = cast(Table, PhotoTag.__table__)
    # Written over the open suggestions in place (a delete and an insert cost twice the index
    # work); a tag a person set, confirmed or rejected keeps its row as it is.
    still_open = (table.c.source == TagSource.MODEL) & (table.c.status == TagStatus.SUGGESTED)
    upsert(
        session, table, rows, ("photo_id", "tag_id"), only_where=still_open, insert_only=("source", "status")
    )
    session.execute(  # the open suggestions this model no longer makes: not written just now
        delete(table).where(
            one_of(session, table.c.photo_id, photo_ids), still_open, table.c.updated_at != now
        )
    )
    # One executemany on the table: the ORM's bulk update by primary key costs ten times more.
    photos = cast(Table, Photo.__table__)
    execute_many(
        session,
        update(photos).where(photos.c.id == bindparam("b_id")).values(uncertainty=bindparam("b_uncertainty")),
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
    """Each chunk of stored embeddings with the champion's suggestions, read and computed one
    chunk ahead in a second thread: the database's reads and the matrix products release the GIL,
    so the next chunk is read and scored while the caller writes this one's rows."""
    tagger = ctx.tagger

    def scored() -> Iterator[tuple[list[str], list[list[Suggestion]]]]:  # advanced in the worker
        for shas, vectors in _embedding_chunks(ctx, tagger.backbone_id):
            champion = tagger.champion()
            yield shas, tagger.suggest(vectors, _activations(ctx, shas, champion), champion)

    chunks = scored()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="retag") as pool:
        ahead = pool.submit(next, chunks, None)  # one worker: the generator runs in one thread
        while (chunk := ahead.result()) is not None:
            ahead = pool.submit(next, chunks, None)
            yield chunk


def retag_all(ctx: Context) -> int:
    """Recompute every tagged photo's suggestions from its stored embedding (after a promotion).

    Streams in chunks, so memory stays bounded however many photos there are. Returns the count."""
    ctx.tagger.refresh(force=True)
    done = 0
    for shas, suggestions in _suggested_chunks(ctx):
        by_sha = dict(zip(shas, suggestions, strict=True))
        with transaction(ctx.sessions) as session:
            photos = lock_rows(  # a write first (see tag_photos)
                session,
                Photo.title,
                one_of(session, Photo.sha256, shas),
                _in_state(TaggingState.DONE),
                returning=(Photo.id, Photo.sha256),
            )
            if not photos:
                continue
            replace_suggestions(
                session,
                [pid for pid, _ in photos],
                {pid: by_sha[sha] for pid, sha in photos},
            )
        done += len(photos)
    return done
