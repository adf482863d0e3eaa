"""What the API accepts: request bodies, and the error shape it answers with."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from eyes.domain import KEY_LENGTH, MAX_ID, License, PersonAudience, ReportReason, Visibility
from eyes.services.albums import MAX_ORDER_LENGTH, MAX_PHOTOS_PER_REQUEST
from eyes.services.people import MAX_CHOSEN_FACES, MAX_VIEWERS
from eyes.services.tags import TAG_RULES
from eyes.web.deps import KEY_PATTERN


class MeUpdate(BaseModel):
    # Strict: 0, 0.0 or "no" would otherwise pass as false, and a consent must be said plainly.
    # Each is optional (change one at a time), but never null.
    private_photos_teach: bool | None = Field(
        None, strict=True, description="Let your private photos train the shared model"
    )
    show_sensitive: bool | None = Field(
        None, strict=True, description="Show sensitive photos unblurred (off: they are blurred)"
    )
    default_license: License | None = Field(
        None, description="The licence your new uploads get unless you choose another"
    )
    faces_enabled: bool | None = Field(
        None, strict=True, description="Find faces in your photos (off: none found, and yours deleted)"
    )

    @model_validator(mode="after")
    def _said_plainly(self) -> MeUpdate:
        if not self.model_fields_set:
            raise ValueError(
                "say which preference to change: private_photos_teach, show_sensitive, default_license "
                "or faces_enabled"
            )
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} is true or false")
        return self


class ReportCreate(BaseModel):
    reason: ReportReason = Field(description="Why this photo should not be here")
    note: str = Field("", max_length=500, description="Anything an administrator should know")


class SensitiveMark(BaseModel):
    marked: bool = Field(
        strict=True, description="True: blurred for others; false: the owner's mark is taken off"
    )


class HideRequest(BaseModel):
    reason: str = Field("", max_length=2000, description="Told to the owner")


class WarnRequest(BaseModel):
    message: str = Field(min_length=1, max_length=2000, description="What the user will see")
    photo: str | None = Field(
        None,
        pattern=f"^[A-Za-z0-9_-]{{{KEY_LENGTH}}}$",
        description="The photo it is about, by its id (optional)",
    )


class InvitationCreate(BaseModel):
    admin: bool = Field(False, strict=True, description="Whoever uses it becomes an administrator")


class PhotoUpdate(BaseModel):
    title: str | None = None
    description: str | None = None
    visibility: Visibility | None = None
    license: License | None = Field(None, description="What others may do with the photo")


class TagCreate(BaseModel):
    name: str = Field(description=TAG_RULES)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# A photo named in a body: its id, as in its URL (anything else names nothing: 422).
PhotoKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


class AlbumCreate(BaseModel):
    title: str = Field(description="Required; at most EYES_MAX_TITLE_LENGTH characters")
    description: str = Field("", description="At most EYES_MAX_DESCRIPTION_LENGTH characters")
    visibility: Visibility = Visibility.PUBLIC
    photos: list[PhotoKey] = Field(
        [],
        max_length=MAX_PHOTOS_PER_REQUEST,
        description=f"Ids of your photos to put in it, in this order (at most {MAX_PHOTOS_PER_REQUEST})",
    )


class AlbumUpdate(BaseModel):
    title: str | None = None
    description: str | None = None
    visibility: Visibility | None = None
    cover: PhotoKey | None = Field(
        None, description="A photo of the album to show as its cover; null: the first photo"
    )


class AlbumPhotosAdd(BaseModel):
    photos: list[PhotoKey] = Field(
        min_length=1,
        max_length=MAX_PHOTOS_PER_REQUEST,
        description=f"Ids of your photos, added at the end in this order (at most {MAX_PHOTOS_PER_REQUEST})",
    )


class AlbumOrder(BaseModel):
    photos: list[PhotoKey] = Field(
        max_length=MAX_ORDER_LENGTH,
        description="Every photo of the album, once, in the new order",
    )


# --- people (the owner's own: /api/v1/me/people, /api/v1/me/faces) ----------------------------

# An id named in a body: within the ids' range (a larger number is a 422, never a server error).
RowId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
NAME_RULES = (
    "1 to 57 characters (EYES_MAX_TAG_LENGTH less the 7 of `person:`) once spaces are collapsed; "
    "its tag is `person:` and the name lower-cased, spaces as '-', so none of / \\ , ? # % : or "
    "control characters"
)


class PersonName(BaseModel):
    name: str = Field(max_length=1000, description=NAME_RULES)


class GroupMerge(BaseModel):
    """Exactly one of the two."""

    into_group: RowId | None = Field(None, description="Another unnamed group: the two become one")
    into_person: RowId | None = Field(None, description="Someone you named: the group's faces are them")

    @model_validator(mode="after")
    def _one(self) -> GroupMerge:
        if (self.into_group is None) == (self.into_person is None):
            raise ValueError("say into_group or into_person (one of them)")
        return self


class GroupSplit(BaseModel):
    faces: list[RowId] = Field(
        min_length=1,
        max_length=MAX_CHOSEN_FACES,
        description="The group's faces to split off as another group",
    )


class PersonMerge(BaseModel):
    into_person: RowId = Field(description="Someone else you named: they keep their name and audience")


class PersonUpdate(BaseModel):
    name: str | None = Field(None, max_length=1000, description=NAME_RULES)
    audience: PersonAudience | None = Field(
        None,
        description="Who sees the tag: owner (you alone), chosen (you and `viewers`), viewers (whoever "
        "may see the photo)",
    )
    viewers: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        None, max_length=MAX_VIEWERS, description="Usernames who see the tag (with audience `chosen`)"
    )

    @model_validator(mode="after")
    def _something(self) -> PersonUpdate:
        if self.name is None and self.audience is None:
            raise ValueError("say what to change: name, or audience (with viewers for 'chosen')")
        if self.viewers is not None and self.audience is None:
            raise ValueError("send the audience with the viewers: audience 'chosen'")
        return self


class FaceAssign(BaseModel):
    """`name`: the face is the person of that name (made if new); else `person`: someone you named;
    neither (or `person: null`): nobody named (recorded as not who it was)."""

    person: RowId | None = None
    name: str | None = Field(None, max_length=1000, description=NAME_RULES)


class NotAFace(BaseModel):
    not_a_face: bool = Field(True, strict=True, description="False: it is a face after all")


class SuggestionAnswer(BaseModel):
    accept: bool = Field(strict=True, description="True: yes, this is them; false: no, never suggest them")
