"""What the API accepts: request bodies, and the error shape it answers with."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from eyes.domain import License, Visibility
from eyes.services.tags import TAG_RULES


class MeUpdate(BaseModel):
    """Each field is optional: what is left out stays as it is."""

    # Strict: 0, 0.0 or "no" would otherwise pass as false, and a consent must be said plainly.
    private_photos_teach: bool | None = Field(
        None, strict=True, description="Let your private photos train the shared model"
    )
    default_license: License | None = Field(
        None, description="The licence your new uploads get unless you choose another"
    )

    @field_validator("private_photos_teach", "default_license", mode="before")
    @classmethod
    def _said(cls, value: object) -> object:
        # Leave a field out to keep it; null says nothing, and is refused rather than guessed at.
        if value is None:
            raise ValueError("say true or false (or a licence), or leave the field out")
        return value


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
