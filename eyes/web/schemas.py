"""What the API accepts: request bodies, and the error shape it answers with."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from eyes.domain import Visibility
from eyes.services.albums import MAX_ORDER_LENGTH, MAX_PHOTOS_PER_REQUEST
from eyes.services.tags import TAG_RULES
from eyes.web.deps import KEY_PATTERN


class MeUpdate(BaseModel):
    # Strict: 0, 0.0 or "no" would otherwise pass as false, and a consent must be said plainly.
    private_photos_teach: bool = Field(
        strict=True, description="Let your private photos train the shared model"
    )


class InvitationCreate(BaseModel):
    admin: bool = Field(False, strict=True, description="Whoever uses it becomes an administrator")


class PhotoUpdate(BaseModel):
    title: str | None = None
    description: str | None = None
    visibility: Visibility | None = None


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
