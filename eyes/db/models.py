"""The tables. Designed for the learning loop: every tag records who or what set it, and how sure."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# The enums live with the rest of the vocabulary (eyes/domain.py); the columns store their values.
from eyes.domain import (
    KEY_LENGTH,
    License,
    ModelStage,
    PersonAudience,
    TaggingState,
    TagSource,
    TagStatus,
    TrainingDepth,
    Visibility,
    new_key,
    version_name,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored moment with its zone: SQLite hands back naive datetimes, written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the values (lower-case words), not the names, and as plain strings: no DB enum types
    # to migrate when a member is added.
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Private photos teach the shared model nothing unless their owner says they may.
    private_photos_teach: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Sensitive photos are blurred for this user unless they opted in (the settings page).
    show_sensitive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Suspended by an administrator: cannot sign in, and their photos are shown to nobody else.
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The licence this user's new uploads get unless they choose another.
    default_license: Mapped[License] = mapped_column(
        _enum(License), default=License.ALL_RIGHTS_RESERVED, server_default=License.ALL_RIGHTS_RESERVED.value
    )
    # Faces are found in this user's photos only when they turn this on (and EYES_FACES is on).
    faces_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Only a hash is kept: a leaked database does not leak working tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never

    user: Mapped[User] = relationship()


class LoginSession(Base):
    """A signed-in browser. The cookie holds a random secret; this row, found by its hash, is what
    makes it valid, so logging out, changing the password or "sign out everywhere" ends it."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class Invitation(Base):
    """A one-time code to sign up with. An administrator's invitation (`admin`), or the setup code
    printed at first start, makes an administrator: never the first visitor."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # The setup link printed at start: it dies as soon as the platform has an administrator.
    setup: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Image(Base):
    """One stored original, by content. Many photos (of different owners) may share it."""

    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)  # after EXIF orientation
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The sensitive-content model's P(sensitive), scored once per content by the tagging job
    # (None: not scored yet; the sweep scores what was stored before).
    sensitive_score: Mapped[float | None] = mapped_column(Float)


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        # Same bytes from the same owner is the same photo: a re-import stores nothing new.
        UniqueConstraint("owner_id", "sha256", name="uq_photos_owner_sha256"),
        UniqueConstraint("public_id", name="uq_photos_public_id"),
        UniqueConstraint("media_key", name="uq_photos_media_key"),
        Index("ix_photos_visibility_id", "visibility", "id"),
        Index("ix_photos_visibility_taken_at_id", "visibility", "taken_at", "id"),  # ?sort=taken
        # Internal ids are never handed out again after a delete (SQLite would reuse the largest).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The photo's name in every URL and API body: an unlisted photo opens only by its link, so
    # the link must not be guessable or countable (the integer id stays internal).
    public_id: Mapped[str] = mapped_column(String(KEY_LENGTH), default=new_key)
    # Part of every media URL; a new one when the visibility changes, so the old URLs stop working
    # and nothing cached under them can show the photo in its new state.
    media_key: Mapped[str] = mapped_column(String(KEY_LENGTH), default=new_key)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility), default=Visibility.PUBLIC)
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    camera: Mapped[str] = mapped_column(String(200), default="")
    lens: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Location is the owner's alone: never rendered for anybody else.
    gps_latitude: Mapped[float | None] = mapped_column(Float)
    gps_longitude: Mapped[float | None] = mapped_column(Float)
    tagging: Mapped[TaggingState] = mapped_column(
        _enum(TaggingState), default=TaggingState.PENDING, index=True
    )
    tagging_error: Mapped[str] = mapped_column(Text, default="")
    # 1 - the champion's best confidence: "help Eyes learn" asks about the least sure first.
    uncertainty: Mapped[float | None] = mapped_column(Float, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The owner says it is sensitive (blurred for others whatever the model's score).
    marked_sensitive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Hidden by an administrator: out of every list, search, export and training set.
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An administrator looked at its high score and kept it: out of the moderation queue.
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Chosen by the owner; only an open licence lets the photo leave in a data set export.
    license: Mapped[License] = mapped_column(
        _enum(License), default=License.ALL_RIGHTS_RESERVED, server_default=License.ALL_RIGHTS_RESERVED.value
    )

    # When faces were looked for in this photo (None: not yet; `eyes faces scan` resumes there).
    faces_scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    owner: Mapped[User] = relationship()
    image: Mapped[Image] = relationship()
    tags: Mapped[list[PhotoTag]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True
    )


class Album(Base):
    """A user's album: some of their photos, in the order they chose, with its own visibility
    (which never shows anybody a photo they could not see on its own)."""

    __tablename__ = "albums"
    __table_args__ = (
        UniqueConstraint("public_id", name="uq_albums_public_id"),
        Index("ix_albums_visibility_id", "visibility", "id"),
        # Internal ids are never handed out again after a delete (as for photos).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The album's name in URLs: an unlisted album opens only by its link, so it is not countable.
    public_id: Mapped[str] = mapped_column(String(KEY_LENGTH), default=new_key)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility), default=Visibility.PUBLIC)
    # Chosen by the owner; None (or a photo gone): the first photo the viewer may see.
    cover_photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlbumPhoto(Base):
    """A photo in an album, at its place. Deleting the photo or the album deletes this row only."""

    __tablename__ = "album_photos"
    __table_args__ = (UniqueConstraint("album_id", "position", name="uq_album_photos_position"),)

    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"), primary_key=True)
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # unique in its album: the album page's cursor
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Tags within tags: a label for `granny-smith` is a label for its parent `apple` too.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tags.id", ondelete="SET NULL"))
    # A tag becomes a class the network learns only once an administrator approved it (or the
    # community is trusted: EYES_OPEN_VOCABULARY), so fake accounts cannot invent classes.
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class PhotoTag(Base):
    """A tag on a photo: set by a person or suggested by a model version, with its status."""

    __tablename__ = "photo_tags"
    __table_args__ = (
        UniqueConstraint("photo_id", "tag_id", name="uq_photo_tags_photo_tag"),
        Index("ix_photo_tags_tag_status", "tag_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    source: Mapped[TagSource] = mapped_column(_enum(TagSource))
    status: Mapped[TagStatus] = mapped_column(_enum(TagStatus))
    set_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    model_version: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    photo: Mapped[Photo] = relationship(back_populates="tags")
    tag: Mapped[Tag] = relationship(lazy="joined")


class TagVote(Base):
    """Another user's opinion of a photo's tag: one vote per user, photo and tag."""

    __tablename__ = "tag_votes"
    __table_args__ = (
        UniqueConstraint("photo_id", "tag_id", "user_id", name="uq_tag_votes"),
        Index("ix_tag_votes_user_created", "user_id", "created_at"),  # the per-account rate limit
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agrees: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Embedding(Base):
    """The backbone's embedding of an image, computed once and reused by every later model."""

    __tablename__ = "embeddings"

    sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256", ondelete="CASCADE"), primary_key=True)
    backbone: Mapped[str] = mapped_column(String(80))  # the backbone's checksum-bearing id
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class Activation(Base):
    """The backbone's activation where the fine-tuned top of the network starts (float16), stored
    once, so deep training and re-tagging after a deep promotion never decode the original again."""

    __tablename__ = "activations"

    sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256", ondelete="CASCADE"), primary_key=True)
    backbone: Mapped[str] = mapped_column(String(80))
    data: Mapped[bytes] = mapped_column(LargeBinary)  # float16, little-endian, the backbone card's shape


class ModelVersion(Base):
    """A trained head. Its files (weights and card) live in the blob store, checksummed."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # One run at a time, enforced by the database itself, however many servers start runs.
        Index(
            "uq_model_versions_one_training",
            "stage",
            unique=True,
            sqlite_where=text("stage = 'training'"),
            postgresql_where=text("stage = 'training'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[ModelStage] = mapped_column(_enum(ModelStage), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(100))  # who claimed the run: one worker only
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # manual, automatic
    depth: Mapped[TrainingDepth] = mapped_column(
        _enum(TrainingDepth), default=TrainingDepth.HEAD, server_default="head"
    )
    parent: Mapped[str | None] = mapped_column(String(64))  # the champion when it was trained
    backbone: Mapped[str] = mapped_column(String(80), default="")
    head_sha256: Mapped[str] = mapped_column(String(64), default="")
    n_labels_at_start: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")  # why rejected or failed
    summary: Mapped[str] = mapped_column(Text, default="{}")  # JSON: metrics, comparison, sizes

    created_by: Mapped[User | None] = relationship()

    @property
    def name(self) -> str:
        return version_name(self.id)


class LabelClock(Base):
    """One row, two numbers that move whenever anything a training label rests on changes
    (services/label_clock.py). The sweep reads them instead of recounting every label."""

    __tablename__ = "label_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    # Changes that can move any number of labels: a class approved, a photo's visibility...
    ticks: Mapped[int] = mapped_column(Integer, default=0)
    # Labels decided one by one: an owner's yes or no on one photo's tag, a vote.
    decisions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Promotion(Base):
    """Each time a version (None: the day-one model) was put in service, newest last. Rollback
    walks it back, skipping what was rolled back, so two rollbacks go two versions back."""

    __tablename__ = "promotions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    promoted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Serving(Base):
    """One row: which version is the champion. Promotion is one atomic update of this row."""

    __tablename__ = "serving"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Report(Base):
    """Someone signed in says a photo breaks the rules: one report per user and photo, until an
    administrator resolves it (hide, restore)."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("photo_id", "reporter_id", name="uq_reports_photo_reporter"),
        Index("ix_reports_open", "resolved_at", "photo_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(20))  # a services.moderation.ReportReason value
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution: Mapped[str] = mapped_column(String(20), default="")  # hidden, restored


class Notice(Base):
    """A message from an administrator to a user (a warning), shown until they dismiss it."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Face(Base):
    """A face found in a photo: the owner's data alone. Its descriptor is computed once."""

    __tablename__ = "faces"
    # Ids never given twice (SQLite reuses a deleted newest row's): a grouping remembers the
    # newest face it saw, and a face's picture is kept by its id.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    # The box in the upright original's pixels.
    left: Mapped[int] = mapped_column(Integer)
    top: Mapped[int] = mapped_column(Integer)
    right: Mapped[int] = mapped_column(Integer)
    bottom: Mapped[int] = mapped_column(Integer)
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)  # 128 little-endian float32
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Who it is, as the owner said (named a group, confirmed a suggestion, moved the face).
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    # Who the owner's recognition model thinks it is, until the owner confirms or rejects it.
    suggested_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    suggestion_distance: Mapped[float | None] = mapped_column(Float)
    # The group the owner's last grouping put this unnamed face in (None: alone, or named).
    group_id: Mapped[int | None] = mapped_column(Integer)
    not_a_face: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Person(Base):
    """Someone an owner named in their own photos: a tag in its own namespace (`person:<slug>`),
    shown to whom the owner allows and to nobody who may not see the photo."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("owner_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))  # as the owner wrote it
    slug: Mapped[str] = mapped_column(String(80))  # the tag's name, normalised like any tag
    audience: Mapped[PersonAudience] = mapped_column(_enum(PersonAudience), default=PersonAudience.OWNER)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PersonViewer(Base):
    """An account the owner chose to see a person's tag (audience `chosen`)."""

    __tablename__ = "person_viewers"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class FaceRejection(Base):
    """The owner said this face is not this person ("not Anna"): a negative for Anna, and never
    suggested again."""

    __tablename__ = "face_rejections"

    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceModel(Base):
    """One version of an owner's recognition model (services/face_recognition.py): which of
    their named faces and rejections it was built from, its threshold, and how it did on their
    confirmed faces. Rebuilt from the faces table, so a deleted photo's face informs nothing."""

    __tablename__ = "face_models"
    __table_args__ = (UniqueConstraint("owner_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per owner
    # champion (in service), retired (was champion), rejected (lost at the gate)
    stage: Mapped[ModelStage] = mapped_column(_enum(ModelStage))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    threshold: Mapped[float] = mapped_column(Float)
    calibration: Mapped[str] = mapped_column(Text, default="{}")  # JSON: ml.people.Calibration
    # JSON {"faces": [[face id, person id], ...], "rejections": [[face id, person id], ...]}
    training_set: Mapped[str] = mapped_column(Text, default="{}")
    n_faces: Mapped[int] = mapped_column(Integer, default=0)  # named faces trained on
    n_people: Mapped[int] = mapped_column(Integer, default=0)
    n_rejections: Mapped[int] = mapped_column(Integer, default=0)
    n_held_out: Mapped[int] = mapped_column(Integer, default=0)  # confirmed faces judged
    accuracy: Mapped[float | None] = mapped_column(Float)  # right suggestions on them
    baseline_accuracy: Mapped[float | None] = mapped_column(Float)  # plain nearest neighbour, 0.6
    reason: Mapped[str] = mapped_column(Text, default="")  # the gate's verdict
    summary: Mapped[str] = mapped_column(Text, default="{}")  # JSON: evaluations, the champion's


class FaceGrouping(Base):
    """An owner's last grouping of their unnamed faces (services/people.py): the newest face it
    saw, and when. Faces newer than that are waiting to be grouped."""

    __tablename__ = "face_groupings"

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    through_face_id: Mapped[int] = mapped_column(Integer)
    grouped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
