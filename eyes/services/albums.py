"""Albums: a user's own photos in the order they chose, each album with its own visibility.

An album never shows anybody a photo they could not open on its own: a viewer other than the
owner sees the album's public and unlisted photos (the owner put their links in it), never a
private one, whatever the album's visibility. Only the owner changes an album, and only with
their own photos. Every change first locks the album's row (SQLite's write lock, the row on
PostgreSQL), so positions and the size limit hold however many requests arrive at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, delete, func, select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Album, AlbumPhoto, Image, Photo, User, utcnow
from eyes.db.session import transaction
from eyes.domain import Account, Visibility
from eyes.errors import BadRequest, Conflict, Forbidden, NotFound
from eyes.services.accounts import get_user_by_name
from eyes.services.photos import LISTED_COLUMNS, check_text, not_hidden, owner_not_suspended, photo_views
from eyes.services.views import AlbumChoice, AlbumPublic, ListedPhoto, PhotoPublic

MAX_PHOTOS_PER_REQUEST = 100  # photos added in one request: a bigger batch is a clear 400
MAX_ORDER_LENGTH = 10_000  # the most ids a reorder may list (EYES_MAX_PHOTOS_PER_ALBUM is at most this)
_NOT_FOUND = "there is no such album"


@dataclass
class AlbumPage:
    items: list[AlbumPublic]
    next_before: int | None  # pass as `before` to get the next page


@dataclass
class AlbumPhotoPage:
    items: list[PhotoPublic]
    next_after: int | None  # pass as `after` to get the next page (a position, not an id)


def _may_see(visibility: Visibility, owner_id: int, viewer: Account | None) -> bool:
    return visibility != Visibility.PRIVATE or (viewer is not None and viewer.id == owner_id)


# Albums listed to others: public ones of accounts that are not suspended.
_LISTED = (Album.visibility == Visibility.PUBLIC) & owner_not_suspended(Album.owner_id)


def _photo_shown_to(viewer: Account | None) -> ColumnElement[bool]:
    """Which photos of an album `viewer` sees (an album holds its owner's photos only)."""
    shown = (Photo.visibility != Visibility.PRIVATE) & not_hidden()
    return shown | (Photo.owner_id == viewer.id) if viewer is not None else shown


def _title(title: str) -> str:
    title = title.strip()
    if not title:
        raise BadRequest("an album needs a title")
    return title


# --- reading ---------------------------------------------------------------------------------


def _visible(session: Session, key: str, viewer: Account | None) -> Album:
    album = session.scalar(select(Album).where(Album.public_id == key))
    # Someone else's private album is 'not found': its existence is private too. So is a
    # suspended account's album, to everyone but its owner (its title and text may be the abuse).
    if album is None or not _may_see(album.visibility, album.owner_id, viewer):
        raise NotFound(_NOT_FOUND)
    if (viewer is None or viewer.id != album.owner_id) and session.scalar(
        select(User.suspended_at).where(User.id == album.owner_id)
    ):
        raise NotFound(_NOT_FOUND)
    return album


def show_album(ctx: Context, key: str, viewer: Account | None) -> AlbumPublic:
    with ctx.sessions() as session:
        album = _visible(session, key, viewer)
        return _views(ctx, session, [album], viewer)[0]


def list_albums(
    ctx: Context,
    viewer: Account | None,
    *,
    owner: str | None = None,
    before: int | None = None,
    limit: int | None = None,
) -> AlbumPage:
    """Newest first, keyset-paginated by id. Lists show public albums only, plus the viewer's
    own (all of them) when they look at their own or at everyone's: an unlisted album is never
    listed for anybody but its owner."""
    owner_account = get_user_by_name(ctx, owner) if owner is not None else None
    limit = max(1, min(limit or ctx.settings.page_size, 200))
    public = _LISTED
    query = select(Album).order_by(Album.id.desc()).limit(limit + 1)
    if owner_account is not None:
        query = query.where(Album.owner_id == owner_account.id)
        if viewer is None or viewer.id != owner_account.id:
            query = query.where(public)
    elif viewer is not None:
        query = query.where(public | (Album.owner_id == viewer.id))
    else:
        query = query.where(public)
    if before is not None:
        query = query.where(Album.id < before)
    with ctx.sessions() as session:
        albums = list(session.scalars(query))
        more = len(albums) > limit
        albums = albums[:limit]
        items = _views(ctx, session, albums, viewer)
    return AlbumPage(items, albums[-1].id if more and albums else None)


def album_choices(ctx: Context, user: Account) -> list[AlbumChoice]:
    """All of `user`'s albums, newest first, for the forms that add photos to one (bounded by
    EYES_MAX_ALBUMS_PER_USER)."""
    with ctx.sessions() as session:
        rows = session.execute(
            select(Album.public_id, Album.title, Album.visibility)
            .where(Album.owner_id == user.id)
            .order_by(Album.id.desc())
        )
        return [AlbumChoice(*row) for row in rows]


def albums_with_photo(ctx: Context, photo_key: str, viewer: Account | None) -> list[AlbumPublic]:
    """The albums a photo is in, as the photo page lists them: all of them for the owner, the
    public ones for everybody else (the caller has checked the viewer may see the photo)."""
    with ctx.sessions() as session:
        query = (
            select(Album)
            .join(AlbumPhoto, AlbumPhoto.album_id == Album.id)
            .join(Photo, Photo.id == AlbumPhoto.photo_id)
            .where(Photo.public_id == photo_key)
            .order_by(Album.id.desc())
        )
        if viewer is None:
            query = query.where(_LISTED)
        else:
            query = query.where(_LISTED | (Album.owner_id == viewer.id))
        return _views(ctx, session, list(session.scalars(query)), viewer)


def album_photos(
    ctx: Context,
    key: str,
    viewer: Account | None,
    *,
    after: int | None = None,
    limit: int | None = None,
    by_date_taken: bool = False,
) -> AlbumPhotoPage:
    """The album's photos that `viewer` may see, in the album's order (or, `by_date_taken`, the
    most recently taken first, undated ones last), keyset-paginated by the last one's position."""
    limit = max(1, min(limit or ctx.settings.page_size, 200))
    with ctx.sessions() as session:
        album = _visible(session, key, viewer)
        in_album = (AlbumPhoto.album_id == album.id) & _photo_shown_to(viewer)
        query = (
            select(AlbumPhoto.position, *LISTED_COLUMNS)
            .join(Photo, Photo.id == AlbumPhoto.photo_id)
            .join(User, User.id == Photo.owner_id)
            .join(Image, Image.sha256 == Photo.sha256)
            .where(in_album)
            .limit(limit + 1)
        )
        if by_date_taken:
            query = query.order_by(Photo.taken_at.desc().nulls_last(), AlbumPhoto.position)
            if after is not None:
                query = query.where(_taken_after(session, in_album, after))
        else:
            query = query.order_by(AlbumPhoto.position)
            if after is not None:
                query = query.where(AlbumPhoto.position > after)
        rows = list(session.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        items = photo_views(ctx, session, [ListedPhoto._make(row[1:]) for row in rows], viewer)
    return AlbumPhotoPage(items, rows[-1].position if more and rows else None)


def _taken_after(session: Session, in_album: ColumnElement[bool], position: int) -> ColumnElement[bool]:
    """What follows the photo at `position` in the order of dates taken; its date is looked up
    only among the album's photos this viewer sees."""
    cursor = session.execute(
        select(Photo.taken_at)
        .join(AlbumPhoto, AlbumPhoto.photo_id == Photo.id)
        .join(User, User.id == Photo.owner_id)
        .where(in_album, AlbumPhoto.position == position)
    ).first()
    if cursor is None:
        raise BadRequest("the page's starting photo is gone; start again from the first page")
    if cursor.taken_at is None:
        return Photo.taken_at.is_(None) & (AlbumPhoto.position > position)
    taken = cursor.taken_at
    return (
        (Photo.taken_at < taken)
        | ((Photo.taken_at == taken) & (AlbumPhoto.position > position))
        | Photo.taken_at.is_(None)
    )


def _views(ctx: Context, session: Session, albums: list[Album], viewer: Account | None) -> list[AlbumPublic]:
    """Albums as `viewer` sees them: three queries for any number (counts, chosen covers, first
    photos), never one per album. A sensitive cover is blurred as the photo is in a grid."""
    if not albums:
        return []
    ids = [a.id for a in albums]
    owners = dict(
        session.execute(select(User.id, User.username).where(User.id.in_({a.owner_id for a in albums}))).all()
    )
    shown = _photo_shown_to(viewer)
    counts: dict[int, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(AlbumPhoto.album_id, func.count())
            .join(Photo, Photo.id == AlbumPhoto.photo_id)
            .where(AlbumPhoto.album_id.in_(ids), shown)
            .group_by(AlbumPhoto.album_id)
        ).all()
    )
    # A chosen cover shows only to whoever may see that photo; else the first photo they may see.
    chosen = {a.cover_photo_id for a in albums if a.cover_photo_id is not None}
    cover_columns = (Photo.public_id, Photo.media_key, Image.sensitive_score, Photo.marked_sensitive)
    covers: dict[int, Row[int, str, str, float | None, bool]] = {}
    if chosen:
        for row in session.execute(
            select(Photo.id, *cover_columns)
            .join(Image, Image.sha256 == Photo.sha256)
            .where(Photo.id.in_(chosen), shown)
        ):
            covers[row.id] = row
    first = (
        select(
            AlbumPhoto.album_id,
            *cover_columns,
            func.row_number().over(partition_by=AlbumPhoto.album_id, order_by=AlbumPhoto.position).label("n"),
        )
        .join(Photo, Photo.id == AlbumPhoto.photo_id)
        .join(Image, Image.sha256 == Photo.sha256)
        .where(AlbumPhoto.album_id.in_(ids), shown)
        .subquery()
    )
    firsts = {
        row.album_id: row
        for row in session.execute(
            select(
                first.c.album_id,
                first.c.public_id,
                first.c.media_key,
                first.c.sensitive_score,
                first.c.marked_sensitive,
            ).where(first.c.n == 1)
        )
    }
    threshold = ctx.settings.sensitive_threshold
    opted_in = viewer is not None and viewer.show_sensitive
    views = []
    for album in albums:
        cover = covers.get(album.cover_photo_id or 0) or firsts.get(album.id)
        # The rule of PhotoPublic.make: sensitive (or not scored yet) is blurred for others.
        sensitive = cover is not None and (
            cover.marked_sensitive or cover.sensitive_score is None or cover.sensitive_score >= threshold
        )
        own = viewer is not None and viewer.id == album.owner_id
        views.append(
            AlbumPublic(
                id=album.public_id,
                owner=owners[album.owner_id],
                title=album.title,
                description=album.description,
                visibility=album.visibility,
                photo_count=counts.get(album.id, 0),
                cover_photo=cover.public_id if cover is not None else None,
                cover_url=f"/media/{cover.media_key}/small.jpg" if cover is not None else None,
                cover_blurred=sensitive and not own and not opted_in,
                url=f"/albums/{album.public_id}",
                created_at=album.created_at,
                updated_at=album.updated_at,
            )
        )
    return views


# --- changing --------------------------------------------------------------------------------


def _lock_owned(session: Session, key: str, user: Account) -> Album:
    """The album, locked for this transaction, if `user` owns it. The lock comes first (an
    update that changes nothing that matters): a read before it could be outdated by the time
    of the write."""
    locked = session.execute(
        update(Album)
        .where(Album.public_id == key)
        .values(updated_at=utcnow())
        .returning(Album.id)
        .execution_options(synchronize_session=False)
    ).first()
    album = session.get(Album, locked.id) if locked is not None else None
    if album is None or not _may_see(album.visibility, album.owner_id, user):
        raise NotFound(_NOT_FOUND)
    if album.owner_id != user.id:
        raise Forbidden("only the album's owner can change it")
    return album


def _owned_photo_ids(session: Session, keys: list[str], user: Account) -> list[int]:
    """The internal ids of the photos named by `keys`, in that order, each of them `user`'s."""
    rows = {
        row.public_id: row
        for row in session.execute(
            select(Photo.id, Photo.public_id, Photo.owner_id, Photo.visibility).where(
                Photo.public_id.in_(keys)
            )
        )
    }
    ids = []
    for key in keys:
        row = rows.get(key)
        if row is None or not _may_see(row.visibility, row.owner_id, user):
            raise NotFound(f"there is no such photo: {key}")
        if row.owner_id != user.id:
            raise Forbidden(f"only your own photos go in your albums; {key} is someone else's")
        ids.append(row.id)
    return ids


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def check_batch(photo_keys: list[str]) -> None:
    """At most MAX_PHOTOS_PER_REQUEST photos at once: checked before anything is read or made."""
    if len(photo_keys) > MAX_PHOTOS_PER_REQUEST:
        raise BadRequest(
            f"add at most {MAX_PHOTOS_PER_REQUEST} photos at once; this asks for {len(photo_keys)}"
        )


def create_album(
    ctx: Context,
    user: Account,
    title: str,
    description: str = "",
    visibility: Visibility = Visibility.PUBLIC,
    photos: list[str] | None = None,
) -> AlbumPublic:
    """Make an album, with `photos` (the owner's) in it already: all or nothing."""
    check_text(ctx, title, description)
    check_batch(photos or [])
    title = _title(title)
    limit = ctx.settings.max_albums_per_user
    with transaction(ctx.sessions) as session:
        # The owner's row is the lock: two creations at once cannot both pass the limit.
        session.execute(update(User).where(User.id == user.id).values(username=User.username))
        have = session.scalar(select(func.count(Album.id)).where(Album.owner_id == user.id)) or 0
        if have >= limit:
            raise Conflict(
                f"you have {have} albums, the most one account may have (EYES_MAX_ALBUMS_PER_USER); "
                "delete one first"
            )
        album = Album(owner_id=user.id, title=title, description=description.strip(), visibility=visibility)
        session.add(album)
        session.flush()
        if photos:
            _add(ctx, session, album, user, photos)
        return _views(ctx, session, [album], user)[0]


_UNSET = object()


def update_album(
    ctx: Context,
    key: str,
    user: Account,
    *,
    title: str | None = None,
    description: str | None = None,
    visibility: Visibility | None = None,
    cover: str | None | object = _UNSET,
) -> AlbumPublic:
    """Change what is given; `cover` is a photo of the album, or None for the first photo."""
    check_text(ctx, title, description)
    with transaction(ctx.sessions) as session:
        album = _lock_owned(session, key, user)
        if title is not None:
            album.title = _title(title)
        if description is not None:
            album.description = description.strip()
        if visibility is not None:
            album.visibility = visibility
        if cover is None:
            album.cover_photo_id = None
        elif isinstance(cover, str):
            (photo_id,) = _owned_photo_ids(session, [cover], user)
            if session.get(AlbumPhoto, (album.id, photo_id)) is None:
                raise BadRequest("the cover is one of the album's photos: add it first")
            album.cover_photo_id = photo_id
        session.flush()
        return _views(ctx, session, [album], user)[0]


def delete_album(ctx: Context, key: str, user: Account) -> None:
    """Delete the album; its photos stay where they are."""
    with transaction(ctx.sessions) as session:
        album = _lock_owned(session, key, user)
        session.execute(delete(Album).where(Album.id == album.id))


def add_photos(ctx: Context, key: str, user: Account, photo_keys: list[str]) -> AlbumPublic:
    """Add the owner's photos at the end, in the order given; a photo already in the album
    stays where it is."""
    check_batch(photo_keys)
    if not photo_keys:
        raise BadRequest("choose at least one photo to add")
    with transaction(ctx.sessions) as session:
        album = _lock_owned(session, key, user)
        _add(ctx, session, album, user, photo_keys)
        return _views(ctx, session, [album], user)[0]


def _add(ctx: Context, session: Session, album: Album, user: Account, photo_keys: list[str]) -> None:
    ids = _owned_photo_ids(session, _unique(photo_keys), user)
    present = set(
        session.scalars(
            select(AlbumPhoto.photo_id).where(AlbumPhoto.album_id == album.id, AlbumPhoto.photo_id.in_(ids))
        )
    )
    new = [i for i in ids if i not in present]
    have = session.scalar(select(func.count()).where(AlbumPhoto.album_id == album.id)) or 0
    limit = ctx.settings.max_photos_per_album
    if have + len(new) > limit:
        raise Conflict(
            f"an album holds at most {limit} photos (EYES_MAX_PHOTOS_PER_ALBUM); this one has "
            f"{have}, and {len(new)} more would not fit"
        )
    end = session.scalar(select(func.max(AlbumPhoto.position)).where(AlbumPhoto.album_id == album.id))
    start = -1 if end is None else end
    session.add_all(
        AlbumPhoto(album_id=album.id, photo_id=photo_id, position=start + 1 + n)
        for n, photo_id in enumerate(new)
    )
    session.flush()


def remove_photo(ctx: Context, key: str, user: Account, photo_key: str) -> AlbumPublic:
    """Take a photo out of the album (the photo itself stays)."""
    with transaction(ctx.sessions) as session:
        album = _lock_owned(session, key, user)
        (photo_id,) = _owned_photo_ids(session, [photo_key], user)
        gone = session.execute(
            delete(AlbumPhoto).where(AlbumPhoto.album_id == album.id, AlbumPhoto.photo_id == photo_id)
        )
        if not gone.rowcount:  # type: ignore[attr-defined]
            raise NotFound("this photo is not in the album")
        if album.cover_photo_id == photo_id:
            album.cover_photo_id = None
        session.flush()
        return _views(ctx, session, [album], user)[0]


def reorder(ctx: Context, key: str, user: Account, photo_keys: list[str]) -> AlbumPublic:
    """Put the album's photos in the order given: every photo of the album, once."""
    if len(photo_keys) > ctx.settings.max_photos_per_album:
        raise BadRequest(f"an album holds at most {ctx.settings.max_photos_per_album} photos")
    if len(set(photo_keys)) != len(photo_keys):
        raise BadRequest("name each photo once")
    with transaction(ctx.sessions) as session:
        album = _lock_owned(session, key, user)
        members = dict(
            session.execute(
                select(Photo.public_id, Photo.id)
                .join(AlbumPhoto, AlbumPhoto.photo_id == Photo.id)
                .where(AlbumPhoto.album_id == album.id)
            ).all()
        )
        if set(photo_keys) != set(members):
            missing = len(set(members) - set(photo_keys))
            strangers = len(set(photo_keys) - set(members))
            raise BadRequest(
                "list every photo of the album once, in the new order: "
                f"{missing} of its photos are missing, {strangers} named are not in it"
            )
        _place(session, album.id, [members[k] for k in photo_keys])
        return _views(ctx, session, [album], user)[0]


def move_photo(ctx: Context, key: str, user: Account, photo_key: str, offset: int) -> None:
    """Move a photo `offset` places (negative: earlier) in the album, within its ends."""
    with transaction(ctx.sessions) as session:
        album = _lock_owned(session, key, user)
        order = list(
            session.scalars(
                select(AlbumPhoto.photo_id)
                .where(AlbumPhoto.album_id == album.id)
                .order_by(AlbumPhoto.position)
            )
        )
        (photo_id,) = _owned_photo_ids(session, [photo_key], user)
        if photo_id not in order:
            raise NotFound("this photo is not in the album")
        at = order.index(photo_id)
        order.insert(max(0, min(len(order) - 1, at + offset)), order.pop(at))
        _place(session, album.id, order)


def _place(session: Session, album_id: int, photo_ids: list[int]) -> None:
    """Number the album's photos 0, 1, ... in this order. Positions are unique in an album, so
    they first move out of the way (to negatives), then to their places."""
    session.execute(
        update(AlbumPhoto)
        .where(AlbumPhoto.album_id == album_id)
        .values(position=-AlbumPhoto.position - 1)
        .execution_options(synchronize_session=False)
    )
    if photo_ids:
        session.execute(
            update(AlbumPhoto).execution_options(synchronize_session=False),
            [{"album_id": album_id, "photo_id": p, "position": n} for n, p in enumerate(photo_ids)],
        )
