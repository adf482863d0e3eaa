"""Similar photos ("more like this") and near-duplicates, from the stored embeddings.

Nothing is decoded or embedded for a query: a photo's embedding was stored when it was uploaded
(services/tagging.py), and the process's index (services/similar_index.py) holds them all. A
viewer sees only public photos and their own: the index keeps to those, and every result is
checked against the database again before it is shown, so what the index does not know yet
(a photo made private by another server a moment ago) is never shown either.

A near-duplicate is the same picture re-encoded, resized or slightly cropped, among the same
owner's photos. The embedding proposes (the owner's photos at least CANDIDATE_SIMILARITY alike),
but it knows what a photo shows, not which photo it is; the layout decides (eyes/ml/layout.py: a
crop-tolerant correlation of small grey thumbnails, at least `near_duplicate_similarity`; both
thresholds measured in docs/benchmarks.md). Uploads report them; `eyes import
--skip-near-duplicates` skips them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from eyes.context import Context
from eyes.db.models import Embedding, Photo
from eyes.domain import Account
from eyes.ml import layout
from eyes.ml.vector_index import Audience
from eyes.services import photos
from eyes.services.fingerprint import Fingerprint
from eyes.services.views import NearDuplicate, PhotoPublic

log = logging.getLogger(__name__)
MAX_SIMILAR = 48
NEAR_DUPLICATES_SHOWN = 5
CANDIDATES = 5  # the owner's most alike photos whose layout is compared
CANDIDATE_SIMILARITY = 0.6  # embeddings less alike than this are never the same picture
SPARE = 8  # results asked of the index beyond those shown, for any the database then leaves out


def _stored_vector(ctx: Context, photo_id: int, sha256: str) -> np.ndarray | None:
    vector = ctx.similar.index().vector(photo_id)
    if vector is not None:
        return vector
    with ctx.sessions() as session:  # embedded, but not indexed yet (another server's upload)
        data = session.scalar(
            select(Embedding.vector).where(
                Embedding.sha256 == sha256, Embedding.backbone == ctx.tagger.backbone_id
            )
        )
    return None if data is None else np.frombuffer(data, dtype="<f4")


def similar_photos(ctx: Context, key: str, viewer: Account | None, limit: int = 12) -> list[PhotoPublic]:
    """The photos most like this one that `viewer` may see, most similar first. A photo the viewer
    may not see is 'not found', as everywhere; one not embedded yet has none."""
    photo = photos.get_visible_photo(ctx, key, viewer)
    limit = max(1, min(limit, MAX_SIMILAR))
    vector = _stored_vector(ctx, photo.id, photo.sha256)
    if vector is None:
        return []
    audience = Audience(owner=viewer.id if viewer is not None else None, public=True)
    found = ctx.similar.index().search(vector, limit + SPARE, audience, exclude=frozenset({photo.id}))
    shown = photos.visible_photos(ctx, found.keys.tolist(), viewer)
    return [shown[k] for k in found.keys.tolist() if k in shown][:limit]


def remember_layout(ctx: Context, photo_id: int, print_: Fingerprint) -> None:
    """A photo just stored: the next photos of an import, which often meet it as a candidate,
    neither read its thumbnail back nor summarise it again (its own check summarised it)."""
    ctx.similar.layouts.remember(photo_id, print_.grey, print_.layout)


def near_duplicates_among_own(
    ctx: Context,
    owner_id: int,
    vector: np.ndarray,
    mine: layout.Summaries | None,
    exclude: frozenset[int] = frozenset(),
) -> list[tuple[int, float]]:
    """The owner's photos (internal ids) that an image nearly duplicates, with how well they line
    up, best first."""
    candidates = ctx.similar.index().search(
        vector,
        CANDIDATES,
        Audience(owner=owner_id, public=False),
        exclude=exclude,
        min_similarity=CANDIDATE_SIMILARITY,
    )
    if not len(candidates.keys):
        return []
    threshold = ctx.settings.near_duplicate_similarity
    scored = [(k, layout.matches(mine, ctx.similar.layouts.get(ctx, k))) for k in candidates.keys.tolist()]
    near = [(k, m) for k, m in scored if m >= threshold]
    if near:  # the index may not know yet of one deleted by another server a moment ago
        with ctx.sessions() as session:
            there = set(session.scalars(select(Photo.id).where(Photo.id.in_([k for k, _ in near]))))
        near = [(k, m) for k, m in near if k in there]
    return sorted(near, key=lambda km: -km[1])


def _shown(ctx: Context, near: list[tuple[int, float]], owner: Account) -> list[NearDuplicate]:
    mine = photos.visible_photos(ctx, [k for k, _ in near], owner)
    return [
        NearDuplicate.of(mine[k], similarity)
        for k, similarity in near[:NEAR_DUPLICATES_SHOWN]
        if k in mine and mine[k].owner == owner.username
    ]


def near_duplicates_of_photo(ctx: Context, key: str, viewer: Account | None) -> list[NearDuplicate]:
    """The owner's other photos this one nearly duplicates: for its owner's eyes only (empty for
    anybody else, who may not even know those photos exist)."""
    photo = photos.get_visible_photo(ctx, key, viewer)
    if viewer is None or viewer.id != photo.owner_id:
        return []
    vector = _stored_vector(ctx, photo.id, photo.sha256)
    kept = ctx.similar.layouts.get(ctx, photo.id)
    mine = None if kept is None else layout.summaries(kept.grey)
    if vector is None or mine is None:
        return []
    return _shown(ctx, near_duplicates_among_own(ctx, viewer.id, vector, mine, frozenset({photo.id})), viewer)


@dataclass
class UploadResult:
    photo: PhotoPublic
    created: bool
    near_duplicates: list[NearDuplicate] = field(default_factory=list)


def upload_and_check(ctx: Context, owner: Account, path: Path, draft: photos.PhotoDraft) -> UploadResult:
    """Upload a photo (services/photos.py), embedded (and scored) now from the decode that makes
    its thumbnails rather than by the tagging job, so the answer can say which of the owner's
    photos it nearly duplicates."""
    ctx.similar.index()  # built before the photo joins it (a no-op but the first time)
    uploaded = photos.upload_photo(ctx, owner.id, path, draft, embed=True, score_sensitive=True)
    shown = photos.show_uploaded(ctx, uploaded, owner)
    print_ = uploaded.fingerprint
    if print_ is None:  # not created, or not readable by the network: its tagging says why
        return UploadResult(shown, uploaded.created)
    near = near_duplicates_among_own(
        ctx, owner.id, print_.features[0], print_.layout, frozenset({uploaded.photo_id})
    )
    return UploadResult(shown, True, _shown(ctx, near, owner))
