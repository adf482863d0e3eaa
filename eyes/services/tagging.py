"""Auto-tagging: embed each photo once, store the embedding, store the champion's suggestions."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Embedding, Photo, PhotoTag, TaggingState, TagSource, TagStatus
from eyes.db.session import transaction
from eyes.services.photos import original_key
from eyes.services.tags import get_or_create_tag

log = logging.getLogger(__name__)
BATCH = 16

Suggestions = list[tuple[str, float]]


def pending_photo_ids(ctx: Context, limit: int = 10_000) -> list[int]:
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Photo.id).where(Photo.tagging == TaggingState.PENDING).order_by(Photo.id).limit(limit)
            )
        )


def tag_photo(ctx: Context, photo_id: int) -> None:
    tag_photos(ctx, [photo_id])


def tag_photos(ctx: Context, photo_ids: Sequence[int]) -> None:
    """Tag the photos that are still pending, in batches. Safe to run twice or concurrently."""
    tagger = ctx.tagger
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
        vectors, failures = embeddings_for(ctx, sorted({sha for _, sha in rows}))
        ready = [(pid, sha) for pid, sha in rows if sha in vectors]
        suggestions = tagger.suggest(np.stack([vectors[sha] for _, sha in ready])) if ready else []
        with transaction(ctx.sessions) as session:
            for (photo_id, _), tags in zip(ready, suggestions, strict=True):
                photo = session.get(Photo, photo_id)
                if photo is None:  # deleted meanwhile
                    continue
                apply_suggestions(session, photo_id, tags, tagger.version)
                photo.tagging = TaggingState.DONE
                photo.tagging_error = ""
            for photo_id, sha in rows:
                if sha in failures and (photo := session.get(Photo, photo_id)) is not None:
                    photo.tagging = TaggingState.UNTAGGABLE
                    photo.tagging_error = failures[sha]


def embeddings_for(ctx: Context, shas: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The stored embedding of each image, computing (and storing) the missing ones.

    Returns the vectors by sha256, and the reason for each image the network could not read."""
    tagger = ctx.tagger
    with ctx.sessions() as session:
        stored = {
            sha: vector
            for sha, vector in session.execute(
                select(Embedding.sha256, Embedding.vector).where(
                    Embedding.sha256.in_(shas), Embedding.backbone == tagger.backbone_id
                )
            )
        }
    vectors = {sha: np.frombuffer(v, dtype="<f4") for sha, v in stored.items()}
    missing = [sha for sha in shas if sha not in vectors]
    failures: dict[str, str] = {}
    inputs: list[np.ndarray] = []
    loaded: list[str] = []
    for sha in missing:
        try:
            with ctx.blobs.open(original_key(sha)) as blob:
                inputs.append(tagger.prepare(blob))
            loaded.append(sha)
        except Exception as exc:  # any unreadable image is marked, never lost or retried forever
            log.warning("cannot prepare %s for the network: %s", sha, exc)
            failures[sha] = f"the network cannot read this image ({exc})"
    if loaded:
        computed = tagger.embed(np.stack(inputs))
        with transaction(ctx.sessions) as session:
            for sha, vector in zip(loaded, computed, strict=True):
                vectors[sha] = vector
                session.merge(
                    Embedding(
                        sha256=sha,
                        backbone=tagger.backbone_id,
                        vector=vector.astype("<f4").tobytes(),
                    )
                )
    return vectors, failures


def apply_suggestions(session: Session, photo_id: int, tags: Suggestions, version: str) -> None:
    """Replace a photo's open model suggestions with new ones.

    Tags a person set, confirmed or rejected are never touched, and never suggested again."""
    session.execute(
        delete(PhotoTag).where(
            PhotoTag.photo_id == photo_id,
            PhotoTag.source == TagSource.MODEL,
            PhotoTag.status == TagStatus.SUGGESTED,
        )
    )
    decided = set(session.scalars(select(PhotoTag.tag_id).where(PhotoTag.photo_id == photo_id)))
    for name, confidence in tags:
        tag = get_or_create_tag(session, name)
        if tag.id in decided:
            continue
        session.add(
            PhotoTag(
                photo_id=photo_id,
                tag_id=tag.id,
                source=TagSource.MODEL,
                status=TagStatus.SUGGESTED,
                model_version=version,
                confidence=float(confidence),
            )
        )
        decided.add(tag.id)
    session.flush()
