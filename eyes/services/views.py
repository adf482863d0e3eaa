"""What the services show of the platform's things: the API's JSON answers and the pages' view
models, built from rows here, so that the web layer never holds a query or imports the database
(the `...Public` family is what others may see)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from eyes.db.models import ApiToken, Invitation, Photo, PhotoTag, User
from eyes.domain import Account, License, ReportReason, TaggingState, TagSource, TagStatus, Visibility
from eyes.services.quota import StorageUse


def as_utc(moment: datetime) -> datetime:
    """Every time is stored in UTC; SQLite hands it back without its zone, so put it back."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account as the services hand it out (who signed up or in, whose cookie or token a
    request carries, an account just made): a frozen copy of what `Account` reads, taken inside
    the service's session. Never a row: nothing outside the services can lazy-load through it,
    write to it, or carry its password hash into a template."""

    id: int
    username: str
    is_admin: bool
    private_photos_teach: bool
    default_license: License
    created_at: datetime
    show_sensitive: bool
    faces_enabled: bool

    @classmethod
    def of(cls, user: User) -> AccountView:
        """The row's columns of the same names (its time in UTC, as every answer gives times)."""
        copied = {f.name: getattr(user, f.name) for f in fields(cls)}
        return cls(**{**copied, "created_at": as_utc(user.created_at)})


class UserPublic(BaseModel):
    username: str
    is_admin: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, user: Account) -> UserPublic:
        return cls(username=user.username, is_admin=user.is_admin, created_at=user.created_at)


class Me(UserPublic):
    """The signed-in user, with their own preferences."""

    private_photos_teach: bool = Field(
        description="Whether this user's private photos may train the shared model"
    )
    show_sensitive: bool = Field(description="Whether sensitive photos are shown to this user unblurred")
    faces_enabled: bool = Field(
        False, description="Whether faces are found in this user's photos (theirs alone to see)"
    )
    default_license: License = Field(description="The licence this user's new uploads get unless they choose")
    storage_used_bytes: int = Field(description="Bytes of this user's originals (a duplicate counts once)")
    storage_quota_bytes: int | None = Field(
        description="How many bytes of originals this user may store; null: no quota"
    )

    @classmethod
    def of_account(cls, user: Account, storage: StorageUse) -> Me:
        return cls(
            username=user.username,
            is_admin=user.is_admin,
            created_at=user.created_at,
            private_photos_teach=user.private_photos_teach,
            show_sensitive=user.show_sensitive,
            faces_enabled=user.faces_enabled,
            default_license=user.default_license,
            storage_used_bytes=storage.used_bytes,
            storage_quota_bytes=storage.quota_bytes,
        )


class InvitationPublic(BaseModel):
    id: int
    admin: bool
    created_at: UtcDatetime
    expires_at: UtcDatetime

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationPublic:
        return cls(
            id=invitation.id,
            admin=invitation.admin,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )


class InvitationMade(InvitationPublic):
    """A new invitation: its code is in this answer only."""

    code: str
    url: str = Field(description="The sign-up link to send: it works once")


class TokenPublic(BaseModel):
    """An API token as its owner sees it listed (never its secret)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    expires_at: UtcDatetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenPublic:
        return cls(
            id=token.id,
            name=token.name,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
        )


class TagPublic(BaseModel):
    name: str
    source: TagSource
    status: TagStatus
    confidence: float | None = Field(None, description="The model's confidence, for suggestions")
    model_version: str | None = Field(None, description="The model version that suggested it")

    @classmethod
    def of(cls, pt: PhotoTag) -> TagPublic:
        return cls.make(pt.tag.name, pt.source, pt.status, pt.confidence, pt.model_version)

    @classmethod
    def make(
        cls, name: str, source: TagSource, status: TagStatus, confidence: float | None, version: str | None
    ) -> TagPublic:
        """From values the database already checked: built without validating again (a feed page
        builds a few hundred)."""
        return cls.model_construct(
            name=name, source=source, status=status, confidence=confidence, model_version=version
        )

    @staticmethod
    def order(tag: TagPublic) -> tuple[bool, float, str]:
        """How a photo's tags are shown: confirmed first, then suggestions by confidence."""
        return (tag.status != TagStatus.CONFIRMED, -(tag.confidence or 0.0), tag.name)


class PersonTag(BaseModel):
    """Someone the owner named in the photo, shown only to whom the owner allows (services/people.py):
    a tag in its own namespace, searchable like any tag, never a label the model learns from."""

    tag: str = Field(description="The tag, `person:<name>`: search for it like any tag")
    name: str = Field(description="The name as the owner wrote it")
    url: str = Field(description="The page of photos with this tag")


class Location(BaseModel):
    latitude: float
    longitude: float


class PhotoPublic(BaseModel):
    id: str = Field(description="The photo's id: 22 random URL-safe characters (unguessable)")
    owner: str
    title: str
    description: str
    visibility: Visibility
    width: int
    height: int
    taken_at: UtcDatetime | None = Field(description="When the camera says it was taken (EXIF)")
    camera: str
    lens: str = Field("", description="The lens, as the camera wrote it (EXIF)")
    created_at: UtcDatetime
    tagging: TaggingState
    tags: list[TagPublic]
    url: str
    thumbnail_url: str
    image_url: str
    location: Location | None = Field(None, description="Only ever shown to the owner")
    original_filename: str | None = Field(None, description="Only ever shown to the owner")
    sensitive: bool = Field(
        False,
        description="Sensitive content: the model's score is at the threshold or above, or the owner marked it",
    )
    marked_sensitive: bool = Field(False, description="The owner marked it sensitive")
    blurred: bool = Field(
        False,
        description="Sensitive (or not yet checked), and this viewer did not opt in to see sensitive "
        "photos unblurred",
    )
    sensitive_score: float | None = Field(
        None, description="The sensitive-content model's score, 0 to 1 (owner and administrators only)"
    )
    hidden: bool = Field(
        False,
        description="Hidden by an administrator, or its owner is suspended: only the owner and "
        "administrators see it",
    )
    license: License = Field(
        License.ALL_RIGHTS_RESERVED,
        description="What others may do with the photo; only an open licence lets it into a data set export",
    )
    people: list[PersonTag] = Field(
        default_factory=list,
        description="People the owner named in it (`person:` tags), those the owner lets you see",
    )

    @classmethod
    def of(cls, photo: Photo, viewer: Account | None, sensitive_threshold: float) -> PhotoPublic:
        shown = [t for t in photo.tags if t.status != TagStatus.REJECTED]
        return cls.make(
            ListedPhoto(
                photo.id,
                photo.public_id,
                photo.media_key,
                photo.owner_id,
                photo.owner.username,
                photo.title,
                photo.description,
                photo.visibility,
                photo.image.width,
                photo.image.height,
                photo.taken_at,
                photo.camera,
                photo.created_at,
                photo.tagging,
                photo.gps_latitude,
                photo.gps_longitude,
                photo.original_filename,
                photo.image.sensitive_score,
                photo.marked_sensitive,
                photo.hidden_at is not None or photo.owner.suspended_at is not None,
                photo.lens,
                photo.license,
            ),
            [TagPublic.of(t) for t in shown],
            viewer,
            sensitive_threshold,
        )

    @classmethod
    def make(
        cls,
        photo: ListedPhoto,
        tags: list[TagPublic],
        viewer: Account | None,
        sensitive_threshold: float,
        people: list[PersonTag] | None = None,
    ) -> PhotoPublic:
        """The one way a photo is shown: its location and file name to its owner alone, its
        sensitive-content score to its owner and administrators, blurred when sensitive unless
        the viewer owns it or opted in, its tags (rejected ones left out by the caller) in their
        order. Built from values the database already checked, without validating them again."""
        own = viewer is not None and viewer.id == photo.owner_id
        score = photo.sensitive_score
        sensitive = photo.marked_sensitive or (score is not None and score >= sensitive_threshold)
        opted_in = viewer is not None and viewer.show_sensitive
        location = None
        if own and photo.gps_latitude is not None and photo.gps_longitude is not None:
            location = Location(latitude=photo.gps_latitude, longitude=photo.gps_longitude)
        return cls.model_construct(
            id=photo.public_id,
            owner=photo.owner,
            title=photo.title,
            description=photo.description,
            visibility=photo.visibility,
            width=photo.width,
            height=photo.height,
            taken_at=as_utc(photo.taken_at) if photo.taken_at else None,
            camera=photo.camera,
            lens=photo.lens,
            created_at=as_utc(photo.created_at),
            tagging=photo.tagging,
            tags=sorted(tags, key=TagPublic.order),
            url=f"/photos/{photo.public_id}",
            thumbnail_url=f"/media/{photo.media_key}/small.jpg",
            image_url=f"/media/{photo.media_key}/large.jpg",
            location=location,
            original_filename=photo.original_filename if own else None,
            sensitive=sensitive,
            marked_sensitive=photo.marked_sensitive,
            # Not yet scored (a bulk import's photos, until the background job reaches them):
            # blurred for others as if sensitive, since nothing has checked it yet.
            blurred=(sensitive or score is None) and not own and not opted_in,
            sensitive_score=score if own or (viewer is not None and viewer.is_admin) else None,
            hidden=photo.hidden,
            license=photo.license,
            people=people or [],
        )


class NearDuplicate(BaseModel):
    """One of the owner's own photos that another nearly duplicates (re-encoded, resized, cropped)."""

    id: str
    title: str
    url: str
    thumbnail_url: str
    similarity: float = Field(description="How well the two line up: 1.0 is the same picture")

    @classmethod
    def of(cls, photo: PhotoPublic, similarity: float) -> NearDuplicate:
        return cls(
            id=photo.id,
            title=photo.title,
            url=photo.url,
            thumbnail_url=photo.thumbnail_url,
            similarity=round(similarity, 4),
        )


class PhotoUploaded(PhotoPublic):
    near_duplicates: list[NearDuplicate] = Field(
        default_factory=list,
        description="Your own photos this one nearly duplicates (the same scene re-encoded, resized "
        "or slightly cropped), most similar first",
    )


class ListedPhoto(NamedTuple):
    """The columns a photo is shown with (one row of the feed's query)."""

    id: int
    public_id: str
    media_key: str
    owner_id: int
    owner: str
    title: str
    description: str
    visibility: Visibility
    width: int
    height: int
    taken_at: datetime | None
    camera: str
    created_at: datetime
    tagging: TaggingState
    gps_latitude: float | None
    gps_longitude: float | None
    original_filename: str
    sensitive_score: float | None
    marked_sensitive: bool
    hidden: bool  # hidden by an administrator, or the owner is suspended
    lens: str
    license: License


class PhotoList(BaseModel):
    items: list[PhotoPublic]
    next: str | None = Field(None, description="URL of the next page, newest first")


class TagScore(BaseModel):
    name: str
    confidence: float


class ClassifyResult(BaseModel):
    tags: list[TagScore] = Field(description="Best first, only those above the threshold")
    model_version: str
    ms: float = Field(description="Server time to decode, embed and tag, in milliseconds")


class AlbumPublic(BaseModel):
    """An album as `viewer` may see it: what it counts and shows are the photos they may see."""

    id: str = Field(description="The album's id: 22 random URL-safe characters (unguessable)")
    owner: str
    title: str
    description: str
    visibility: Visibility
    photo_count: int = Field(description="Photos of the album that you may see")
    cover_photo: str | None = Field(
        None, description="Id of the photo shown as the cover: the chosen one, else the first you may see"
    )
    cover_url: str | None = Field(None, description="Thumbnail of the cover")
    cover_blurred: bool = Field(
        False,
        description="The cover is sensitive (or not checked yet) and you did not opt in: show it blurred",
    )
    url: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class AlbumList(BaseModel):
    items: list[AlbumPublic]
    next: str | None = Field(None, description="URL of the next page, newest first")


class AlbumChoice(NamedTuple):
    """One of the owner's albums, as a form offers it."""

    id: str
    title: str
    visibility: Visibility


class ReportPublic(BaseModel):
    """A report as its author and administrators see it."""

    id: int
    photo: str = Field(description="The photo's id")
    reporter: str
    reason: ReportReason
    note: str
    created_at: UtcDatetime
    resolution: str = Field("", description="Empty while open; `hidden` or `restored` once resolved")


class ModerationItem(BaseModel):
    """One photo in the administrators' moderation queue: reported, or scored sensitive by the
    model and not yet reviewed."""

    photo: PhotoPublic
    reports: list[ReportPublic]
    owner_suspended: bool


class NoticePublic(BaseModel):
    """A message from an administrator to this user (a warning), until they dismiss it."""

    id: int
    message: str
    photo: str | None = Field(None, description="The photo it is about, if any")
    created_at: UtcDatetime


class SuspendedUser(BaseModel):
    username: str
    suspended_at: UtcDatetime
