"""Photos: upload, see, list, edit and delete, with the visibility rules in one place."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql import Executable

from eyes.context import Context
from eyes.db.models import Image, Photo, PhotoTag, Tag, User
from eyes.db.session import transaction
from eyes.domain import Account, License, PhotoOrder, TagStatus, Visibility, new_key
from eyes.errors import BadRequest, Forbidden, NotFound, QuotaExceeded
from eyes.images import DecodedImage, PhotoMetadata, decode, pixel_count, safe_filename, thumbnail
from eyes.services import image_store, label_clock, person_tags
from eyes.services.accounts import get_user_by_name
from eyes.services.fingerprint import Fingerprint, fingerprint, network_inputs
from eyes.services.quota import check_quota, quota_refusals
from eyes.services.tagging import write_features
from eyes.services.tags import (
    TypedTags,
    is_person_tag,
    normalize_tag,
    parse_tag_list,
    reject_owner_tag,
    set_owner_tag,
    typed_tags,
)
from eyes.services.views import ListedPhoto, PhotoPublic, TagPublic

ORIGINAL_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
MAX_QUERY_TAGS = 8
LISTED_COLUMNS = (  # in the order of views.ListedPhoto
    Photo.id,
    Photo.public_id,
    Photo.media_key,
    Photo.owner_id,
    User.username,
    Photo.title,
    Photo.description,
    Photo.visibility,
    Image.width,
    Image.height,
    Photo.taken_at,
    Photo.camera,
    Photo.created_at,
    Photo.tagging,
    Photo.gps_latitude,
    Photo.gps_longitude,
    Photo.original_filename,
    Image.sensitive_score,
    Photo.marked_sensitive,
    (Photo.hidden_at.is_not(None) | User.suspended_at.is_not(None)).label("hidden"),
    Photo.lens,
    Photo.license,
)  # each tag is one more condition on the query: a few narrow it enough


@dataclass
class PhotoDraft:
    """What an uploader says about a photo besides its bytes."""

    filename: str = ""
    title: str = ""
    description: str = ""
    visibility: Visibility = Visibility.PUBLIC
    tags: TypedTags = ()  # as typed (`beach, sunset`) or one by one: `checked_draft` tidies them
    # When the photo was taken if its EXIF does not say (an import: the file's modification time).
    taken_at: datetime | None = None
    license: License | None = None  # None: the owner's default licence


@dataclass
class Uploaded:
    photo_id: int
    created: bool  # False: the owner already had these bytes, nothing new was stored
    fingerprint: Fingerprint | None = None  # of a photo created, when the upload ran the network


def check_text(ctx: Context, title: str | None, description: str | None) -> None:
    s = ctx.settings
    if title is not None and len(title) > s.max_title_length:
        raise BadRequest(f"a title is at most {s.max_title_length} characters; this one has {len(title)}")
    if description is not None and len(description) > s.max_description_length:
        raise BadRequest(
            f"a description is at most {s.max_description_length} characters; this one has {len(description)}"
        )


def upload_photo(
    ctx: Context,
    owner_id: int,
    path: Path,
    draft: PhotoDraft,
    *,
    embed: bool = False,
    score_sensitive: bool = False,
) -> Uploaded:
    """Validate, store and record one photo, then queue its tagging.

    `embed`: run the network now, on the decode that validates the photo and makes its thumbnails
    (to look for near-duplicates, say): the features are stored with it and returned, and tagging
    does not decode the photo again; so is its sensitive-content score, `score_sensitive`."""
    draft = checked_draft(ctx, draft)  # a bad title is refused even for bytes the owner has
    # Read once: the same bytes are hashed and decoded (the upload limit bounds their size).
    data = path.read_bytes()
    sha256 = content_hash(data)
    existing = owned_copies(ctx, owner_id, [sha256])
    if existing:
        return Uploaded(existing[sha256], created=False)
    with ctx.sessions() as session:  # before decoding: an account past its quota costs no decode
        check_quota(session, ctx.settings, owner_id, len(data))
    upload = prepare_upload(ctx, path, draft, data, sha256, embed=embed, score_sensitive=score_sensitive)
    stored = store_uploads(ctx, owner_id, [upload])[0]
    if isinstance(stored, QuotaExceeded):
        raise stored
    return stored


@dataclass
class PhotoUpload:
    """A photo checked, read and decoded, with its thumbnails made: nothing of it written yet."""

    draft: PhotoDraft  # title and description stripped, tags normalised
    image: image_store.Prepared
    metadata: PhotoMetadata
    fingerprint: Fingerprint | None = None  # when the network ran on it (and could read it)


def checked_draft(ctx: Context, draft: PhotoDraft) -> PhotoDraft:
    """What the uploader says, checked (4xx) and tidied: title and description stripped, tags
    normalised. Checking it again changes nothing."""
    title, description = draft.title.strip(), draft.description.strip()
    check_text(ctx, title, description)
    tags = tuple(typed_tags(draft.tags, ctx.settings.max_tag_length))
    return replace(draft, title=title, description=description, tags=tags)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare_upload(
    ctx: Context,
    path: Path,
    draft: PhotoDraft,
    data: bytes,
    sha256: str,
    *,
    patient: bool = False,
    embed: bool = False,
    score_sensitive: bool = False,
) -> PhotoUpload:
    """Check what the uploader says and decode the file's bytes (`data`, hashed `sha256`) once:
    for the thumbnails and, `embed`, the network (and `score_sensitive`, the sensitive-content
    model). 4xx for anything wrong with either. Decoding waits for its memory: a request (not
    `patient`) is told the server is busy after a while, an import waits its turn."""
    draft = checked_draft(ctx, draft)
    sizes = {"small": ctx.settings.thumb_small_px, "large": ctx.settings.thumb_large_px}
    inputs = None
    # A decode takes about 4 bytes a pixel: as many at once as the memory budget allows, the
    # others wait (services/limits.py).
    with ctx.limits.decoding.hold(pixel_count(data), patient=patient):
        # At the scale the largest thumbnail needs: the network needs less.
        decoded = decode(data, max_pixels=ctx.settings.max_image_pixels, longest_side=max(sizes.values()))
        try:
            thumbs = _thumbnails(decoded, sizes)
            if embed:
                inputs = network_inputs(decoded.image, score_sensitive=score_sensitive)
        finally:
            decoded.image.close()  # its pixels go before the slot does; the metadata stays
    return PhotoUpload(
        draft,
        image_store.Prepared(sha256, path, decoded.format, decoded.width, decoded.height, len(data), thumbs),
        PhotoMetadata(decoded.taken_at, decoded.camera, decoded.lens, decoded.gps),
        None if inputs is None else fingerprint(ctx, inputs),  # the network runs once the image is closed
    )


def _thumbnails(decoded: DecodedImage, sizes: dict[str, int]) -> dict[str, bytes]:
    """Each size's thumbnail; sizes the image is no larger than share one encoding (the same bytes)."""
    encoded: dict[int, bytes] = {}
    thumbs = {}
    for size, px in sizes.items():
        side = min(px, max(decoded.image.size))
        if side not in encoded:
            encoded[side] = thumbnail(decoded, side)
        thumbs[size] = encoded[side]
    return thumbs


def store_uploads(
    ctx: Context, owner_id: int, uploads: Sequence[PhotoUpload]
) -> list[Uploaded | QuotaExceeded]:
    """Record prepared uploads of one owner, in one transaction, and queue their tagging: for each,
    its photo (`created` False where the owner had these bytes already, or where an earlier
    upload of the list has them) or, for one that would take the account past its quota, why not.

    Order matters for "nothing lost, nothing left behind": blobs go in first (atomically, by
    content), then the rows in one transaction that holds each image row while it checks the
    blobs are still there (services/image_store.py). Blobs of a failed transaction have no row:
    the orphan sweep takes them once they are old."""
    existing = owned_copies(ctx, owner_id, [u.image.sha256 for u in uploads])
    fresh = {u.image.sha256: u for u in uploads if u.image.sha256 not in existing}  # first of each
    sizes = {sha: u.image.size_bytes for sha, u in fresh.items()}
    with ctx.sessions() as session:
        refused = quota_refusals(session, ctx.settings, owner_id, sizes)
    # Before the transaction, which stays short; only those within the quota (counted again there).
    image_store.write_missing(ctx, [u.image for sha, u in fresh.items() if sha not in refused])
    try:
        with transaction(ctx.sessions) as session:
            owner = session.get_one(User, owner_id)
            # Counted again in the transaction: uploads in parallel.
            refused = quota_refusals(session, ctx.settings, owner_id, sizes)
            added = {sha: _new_photo(owner, u) for sha, u in fresh.items() if sha not in refused}
            image_store.claim(session, ctx, [fresh[sha256].image for sha256 in added])
            session.add_all(added.values())
            session.flush()
            for sha256, photo in added.items():
                for name in fresh[sha256].draft.tags:
                    set_owner_tag(session, photo, owner, name)
            prints = {sha: fresh[sha].fingerprint for sha in added}
            write_features(
                session,
                ctx.tagger.backbone_id,
                {sha: f.features for sha, f in prints.items() if f is not None},
                {sha: f.sensitive_score for sha, f in prints.items() if f and f.sensitive_score is not None},
            )
    except IntegrityError:
        # The same owner uploaded the same bytes at the same moment: theirs is the photo.
        if len(uploads) > 1:  # which one: each on its own
            return [stored for upload in uploads for stored in store_uploads(ctx, owner_id, [upload])]
        existing = owned_copies(ctx, owner_id, [uploads[0].image.sha256])
        if existing:
            return [Uploaded(existing[uploads[0].image.sha256], created=False)]
        raise
    for sha256, photo in added.items():
        upload = fresh[sha256]
        if upload.fingerprint is not None:
            vector = upload.fingerprint.features[0]
            ctx.similar.added(photo.id, owner_id, upload.draft.visibility == Visibility.PUBLIC, vector)
        if ctx.jobs is not None:
            ctx.jobs.enqueue("tag_photo", photo.id)
    results: list[Uploaded | QuotaExceeded] = []
    first = set()
    for upload in uploads:
        sha256 = upload.image.sha256
        if sha256 in refused:
            results.append(refused[sha256])
        elif sha256 in added:
            created = sha256 not in first
            results.append(Uploaded(added[sha256].id, created, upload.fingerprint if created else None))
            first.add(sha256)
        else:
            results.append(Uploaded(existing[sha256], created=False))
    return results


def _new_photo(owner: User, upload: PhotoUpload) -> Photo:
    draft, meta = upload.draft, upload.metadata
    return Photo(
        owner_id=owner.id,
        sha256=upload.image.sha256,
        title=draft.title,
        description=draft.description,
        visibility=draft.visibility,
        original_filename=safe_filename(draft.filename),
        taken_at=meta.taken_at or draft.taken_at,
        camera=meta.camera,
        lens=meta.lens,
        gps_latitude=meta.gps.latitude if meta.gps else None,
        gps_longitude=meta.gps.longitude if meta.gps else None,
        license=draft.license or owner.default_license,
    )


def owned_copies(ctx: Context, owner_id: int, shas: Sequence[str] | None = None) -> dict[str, int]:
    """The owner's photos by content (sha256): of these contents, those they have (None: all)."""
    query = select(Photo.sha256, Photo.id).where(Photo.owner_id == owner_id)
    if shas is not None:
        query = query.where(Photo.sha256.in_(set(shas)))
    with ctx.sessions() as session:
        return {sha: photo_id for sha, photo_id in session.execute(query)}


_SUSPENDED = select(User.id).where(User.suspended_at.is_not(None))


def not_hidden() -> ColumnElement[bool]:
    """The moderation rule, in one place: photos no administrator hid and whose owner is not
    suspended. Every list, search and similar-photo answer for anyone but the owner, and
    everything that teaches the model or leaves the platform (training labels in
    services/labels.py, dataset exports), selects only these."""
    return and_(Photo.hidden_at.is_(None), owner_not_suspended(Photo.owner_id))


def owner_not_suspended(owner_id: Any) -> ColumnElement[bool]:
    """What belongs to an account that is not suspended (its photos, its albums): shown to others."""
    return owner_id.not_in(_SUSPENDED)  # type: ignore[no-any-return]


def is_hidden(photo: Photo) -> bool:
    """`not_hidden()` for one loaded photo (with its owner)."""
    return photo.hidden_at is not None or photo.owner.suspended_at is not None


def can_view(photo: Photo, viewer: Account | None) -> bool:
    return _may_see(photo.visibility, photo.owner_id, is_hidden(photo), viewer)


def _may_see(visibility: Visibility, owner_id: int, hidden: bool, viewer: Account | None) -> bool:
    """Private: the owner alone. Hidden by moderation: the owner, and administrators (who judge it)."""
    if viewer is not None and viewer.id == owner_id:
        return True
    if visibility == Visibility.PRIVATE:
        return False
    return not hidden or (viewer is not None and viewer.is_admin)


def photo_query() -> Select[Photo]:
    """Photos with what every view of one needs: its tags, owner and image. Owner and image are
    one row each: joined into the photos' query, not two more round trips."""
    return select(Photo).options(
        selectinload(Photo.tags).joinedload(PhotoTag.tag),
        joinedload(Photo.owner),
        joinedload(Photo.image),
    )


def get_photo(ctx: Context, photo_id: int) -> Photo:
    """A photo by its internal id (jobs, services): never one a person typed."""
    return _one(ctx, Photo.id == photo_id)


def _one(ctx: Context, where: ColumnElement[bool]) -> Photo:
    with ctx.sessions() as session:
        photo = session.scalar(photo_query().where(where))
    if photo is None:
        raise NotFound("there is no such photo")
    return photo


def get_visible_photo(ctx: Context, key: str, viewer: Account | None) -> Photo:
    """The photo named by its public id, if `viewer` may see it. Someone else's private photo is
    'not found', not 'forbidden': its existence is private too."""
    photo = _one(ctx, Photo.public_id == key)
    if not can_view(photo, viewer):
        raise NotFound("there is no such photo")
    return photo


def as_seen_by(ctx: Context, photo: Photo, viewer: Account | None) -> PhotoPublic:
    """A loaded photo as `viewer` sees it (the view applies the sensitive-content threshold), with
    the people its owner named in it that `viewer` may see."""
    return all_as_seen_by(ctx, [photo], viewer)[0]


def all_as_seen_by(ctx: Context, photos: Sequence[Photo], viewer: Account | None) -> list[PhotoPublic]:
    """`as_seen_by` for a list of loaded photos: their people in one query, not one per photo."""
    views = [PhotoPublic.of(photo, viewer, ctx.settings.sensitive_threshold) for photo in photos]
    if ctx.settings.faces and photos:
        with ctx.sessions() as session:
            people = person_tags.person_tags(ctx, session, [photo.id for photo in photos], viewer)
        for photo, view in zip(photos, views, strict=True):
            view.people = people.get(photo.id, [])
    return views


def show(ctx: Context, key: str, viewer: Account | None) -> PhotoPublic:
    """The photo as `viewer` may see it (its location and file name for its owner only)."""
    return as_seen_by(ctx, get_visible_photo(ctx, key, viewer), viewer)


def show_uploaded(ctx: Context, uploaded: Uploaded, owner: Account) -> PhotoPublic:
    return as_seen_by(ctx, get_photo(ctx, uploaded.photo_id), owner)


@dataclass(frozen=True)
class Blob:
    """What a media answer serves: the store's key, its validator, type, and who may cache it."""

    key: str
    etag: str
    media_type: str
    public: bool


def thumbnail_blob(ctx: Context, media_key: str, size: str, viewer: Account | None) -> Blob:
    if size not in image_store.THUMB_SIZES:
        raise NotFound("thumbnails are small.jpg and large.jpg")
    # Three columns, not the photo with its tags: a feed page asks for dozens of these.
    with ctx.sessions() as session:
        row = session.execute(
            select(Photo.sha256, Photo.visibility, Photo.owner_id, not_hidden().label("shown")).where(
                Photo.media_key == media_key
            )
        ).first()
    # A key given up when the visibility changed (or the photo was hidden) names nothing.
    if row is None or not _may_see(row.visibility, row.owner_id, not row.shown, viewer):
        raise NotFound("there is no such photo")
    public = row.visibility == Visibility.PUBLIC and bool(row.shown)
    return Blob(image_store.thumb_key(row.sha256, size), f'"{row.sha256[:32]}-{size}"', "image/jpeg", public)


def original_blob(ctx: Context, key: str, viewer: Account | None) -> Blob:
    """The uploaded file as it was, location included: the owner's alone."""
    photo = get_visible_photo(ctx, key, viewer)
    if viewer is None or viewer.id != photo.owner_id:
        raise NotFound("the original file is only available to the photo's owner")
    mime = ORIGINAL_TYPES[photo.image.format]
    return Blob(image_store.original_key(photo.sha256), f'"{photo.sha256[:32]}"', mime, public=False)


def get_owned_photo(ctx: Context, key: str, user: Account) -> Photo:
    photo = get_visible_photo(ctx, key, user)
    if photo.owner_id != user.id:
        raise Forbidden("only the owner can change this photo")
    return photo


# Columns, not rows: a page is a few hundred values, and loading them as objects cost more than
# the rest of the request together. The public feed's statements are built once (building one
# costs about as much as running it).
_LISTED = (
    select(*LISTED_COLUMNS).join(User, User.id == Photo.owner_id).join(Image, Image.sha256 == Photo.sha256)
)
_PUBLIC = Photo.visibility == Visibility.PUBLIC
_FEED = _LISTED.where(_PUBLIC, not_hidden()).order_by(Photo.id.desc()).limit(bindparam("limit"))
_FEED_BEFORE = _FEED.where(Photo.id < bindparam("before"))
_SHOWN_TAGS = (
    select(
        PhotoTag.photo_id,
        Tag.name,
        PhotoTag.source,
        PhotoTag.status,
        PhotoTag.confidence,
        PhotoTag.model_version,
    )
    .join(Tag, Tag.id == PhotoTag.tag_id)
    .where(PhotoTag.photo_id.in_(bindparam("ids", expanding=True)), PhotoTag.status != TagStatus.REJECTED)
)


def visible_photos(ctx: Context, ids: list[int], viewer: Account | None) -> dict[int, PhotoPublic]:
    """These photos (by internal id) as `viewer` sees them, leaving out what they may not see:
    the public ones and the viewer's own (unlisted ones of others open only by their link)."""
    if not ids:
        return {}
    listed = _PUBLIC & not_hidden()
    shown_to = listed | (Photo.owner_id == viewer.id) if viewer is not None else listed
    with ctx.sessions() as session:
        rows = [ListedPhoto._make(r) for r in session.execute(_LISTED.where(Photo.id.in_(ids), shown_to))]
        views = photo_views(ctx, session, rows, viewer)
    return {row.id: view for row, view in zip(rows, views, strict=True)}


@dataclass
class PhotoPage:
    items: list[PhotoPublic]
    next_before: int | None  # pass as `before` to get the next page
    tags: list[str] = field(default_factory=list)  # those asked for, normalised: what a page names


def list_photos(
    ctx: Context,
    viewer: Account | None,
    *,
    owner: str | None = None,
    tags: TypedTags = (),
    before: int | None = None,
    limit: int | None = None,
    sort: PhotoOrder = PhotoOrder.NEW,
) -> PhotoPage:
    """Newest first (or, `sort=taken`, the most recently taken first, undated photos last),
    keyset-paginated by id (no OFFSET: page 1,000 costs what page 1 costs).

    Lists show public photos, plus the viewer's own when they look at their own photos or search;
    photos hidden by moderation only to their owner (services/photos.not_hidden).
    `owner` is a username and `tags` are as people typed them (normalised here, and named in the
    page returned): photos with all of them.
    """
    names = typed_tags(tags, ctx.settings.max_tag_length, query=True)
    if len(names) > MAX_QUERY_TAGS:
        raise BadRequest(f"search for at most {MAX_QUERY_TAGS} tags at once; this asks for {len(names)}")
    owner_account = get_user_by_name(ctx, owner) if owner is not None else None
    limit = max(1, min(limit or ctx.settings.page_size, 200))
    params: dict[str, object] = {"limit": limit + 1, "before": before}
    if owner_account is None and not names and sort == PhotoOrder.NEW:  # built once: the common case
        query = _FEED if before is None else _FEED_BEFORE
        if viewer is None:  # the same for every anonymous visitor
            return ctx.feed_cache.get_or_read(
                (before, limit), lambda: _read_page(ctx, query, params, limit, viewer)
            )
    else:
        query = _LISTED.limit(bindparam("limit"))
        if owner_account is not None:
            query = query.where(Photo.owner_id == owner_account.id)
            if viewer is None or viewer.id != owner_account.id:
                query = query.where(_PUBLIC, not_hidden())
        elif viewer is not None:
            query = query.where((_PUBLIC & not_hidden()) | (Photo.owner_id == viewer.id))
        else:
            query = query.where(_PUBLIC, not_hidden())
        for name in names:
            if is_person_tag(name):  # someone named in the photo, if the viewer may know it
                query = query.where(person_tags.with_person(ctx, name, viewer))
                continue
            query = query.where(
                exists()
                .where(PhotoTag.photo_id == Photo.id, PhotoTag.status != TagStatus.REJECTED)
                .where(PhotoTag.tag_id == select(Tag.id).where(Tag.name == name).scalar_subquery())
            )
        if sort == PhotoOrder.TAKEN:
            query = query.order_by(Photo.taken_at.desc().nulls_last(), Photo.id.desc())
            if before is not None:
                query = query.where(_taken_before(ctx, before, viewer))
        else:
            query = query.order_by(Photo.id.desc())
            if before is not None:
                query = query.where(Photo.id < bindparam("before"))
    return _read_page(ctx, query, params, limit, viewer, names)


def search_photos(
    ctx: Context,
    viewer: Account | None,
    typed: str,
    *,
    before: int | None = None,
    limit: int | None = None,
    sort: PhotoOrder = PhotoOrder.NEW,
) -> PhotoPage:
    """`list_photos` for what was typed in a search box: tags separated by commas or spaces
    (`sea beach`). A box with no tag in it finds nothing, and asks the database nothing."""
    tags = parse_tag_list(typed.replace(" ", ","), ctx.settings.max_tag_length, query=True)
    if not tags:
        return PhotoPage([], None)
    return list_photos(ctx, viewer, tags=tags, before=before, limit=limit, sort=sort)


def _read_page(
    ctx: Context,
    query: Executable,
    params: dict[str, object],
    limit: int,
    viewer: Account | None,
    tags: list[str] | None = None,
) -> PhotoPage:
    with ctx.sessions() as session:
        rows = [ListedPhoto._make(row) for row in session.execute(query, params)]
        more = len(rows) > limit
        rows = rows[:limit]
        items = photo_views(ctx, session, rows, viewer)
    return PhotoPage(items, rows[-1].id if more and rows else None, tags or [])


def photo_views(
    ctx: Context, session: Session, rows: list[ListedPhoto], viewer: Account | None
) -> list[PhotoPublic]:
    """Listed photos as `viewer` sees them, with their shown tags: one query for all of them."""
    shown: dict[int, list[TagPublic]] = {row.id: [] for row in rows}
    if shown:
        for photo_id, name, source, status, confidence, version in session.execute(
            _SHOWN_TAGS, {"ids": list(shown)}
        ):
            shown[photo_id].append(TagPublic.make(name, source, status, confidence, version))
    threshold = ctx.settings.sensitive_threshold
    people = person_tags.person_tags(ctx, session, list(shown), viewer)
    return [PhotoPublic.make(row, shown[row.id], viewer, threshold, people.get(row.id)) for row in rows]


def _taken_before(ctx: Context, before: int, viewer: Account | None) -> ColumnElement[bool]:
    """What comes after photo `before` in the order of dates taken. The cursor's date is looked
    up only among photos a list may show this viewer (public ones not hidden by moderation, and
    their own): ids can be counted, and where the next page starts must not tell when someone's
    private, unlisted or hidden photo was taken, nor that it exists."""
    with ctx.sessions() as session:
        row = session.execute(
            select(Photo.taken_at, Photo.visibility, Photo.owner_id, not_hidden().label("shown")).where(
                Photo.id == before
            )
        ).first()
    listed = row is not None and (
        (row.visibility == Visibility.PUBLIC and bool(row.shown))
        or (viewer is not None and viewer.id == row.owner_id)
    )
    if row is None or not listed:
        raise BadRequest("the page's starting photo is gone; start again from the first page")
    if row.taken_at is None:
        return Photo.taken_at.is_(None) & (Photo.id < before)
    taken = row.taken_at
    return (
        (Photo.taken_at < taken)
        | ((Photo.taken_at == taken) & (Photo.id < before))
        | Photo.taken_at.is_(None)
    )


def update_photo(
    ctx: Context,
    key: str,
    user: Account,
    *,
    title: str | None = None,
    description: str | None = None,
    visibility: Visibility | None = None,
    license: License | None = None,
) -> PhotoPublic:
    check_text(ctx, title, description)
    photo_id = get_owned_photo(ctx, key, user).id
    changed: Visibility | None = None
    with transaction(ctx.sessions) as session:
        photo = session.get_one(Photo, photo_id)
        if title is not None:
            photo.title = title.strip()
        if description is not None:
            photo.description = description.strip()
        if visibility is not None and visibility != photo.visibility:
            photo.visibility = visibility
            label_clock.tick(session)  # what may teach changed
            # New media URLs: whatever a browser or a shared cache kept under the old ones (for
            # a year, immutable) no longer matches anything this photo is now.
            photo.media_key = new_key()
            changed = visibility
        if license is not None:
            photo.license = license  # what others may do with it: teaches the model no differently
    if changed is not None:
        ctx.similar.visibility_changed(photo_id, user.id, changed)
    return as_seen_by(ctx, get_photo(ctx, photo_id), user)


def add_owner_tags(ctx: Context, key: str, user: Account, tags: TypedTags) -> PhotoPublic:
    """The owner sets tags (or confirms suggestions) on their photo, as they typed them (a field
    `beach, sunset`, or names one by one: normalised here, each once); returns the photo as it
    is now."""
    names = typed_tags(tags, ctx.settings.max_tag_length)
    photo_id = get_owned_photo(ctx, key, user).id
    with transaction(ctx.sessions) as session:
        photo = session.get_one(Photo, photo_id)
        for name in names:
            set_owner_tag(session, photo, user, name)
    return as_seen_by(ctx, get_photo(ctx, photo_id), user)


def remove_owner_tag(ctx: Context, key: str, user: Account, name: str) -> PhotoPublic:
    """The owner removes a tag (or rejects a suggestion); returns the photo as it is now."""
    name = normalize_tag(name, ctx.settings.max_tag_length)
    photo_id = get_owned_photo(ctx, key, user).id
    with transaction(ctx.sessions) as session:
        reject_owner_tag(session, session.get_one(Photo, photo_id), user, name)
    return as_seen_by(ctx, get_photo(ctx, photo_id), user)


def delete_photo(ctx: Context, key: str, user: Account) -> None:
    """Delete the photo; its image (row and blobs) goes too when no other photo refers to it."""
    photo = get_owned_photo(ctx, key, user)
    with transaction(ctx.sessions) as session:
        session.execute(delete(Photo).where(Photo.id == photo.id))
        label_clock.tick(session)
    ctx.similar.removed(photo.id)
    # If this fails (the store is down), the sweep removes the unreferenced image later.
    image_store.remove_if_unreferenced(ctx, photo.sha256)
