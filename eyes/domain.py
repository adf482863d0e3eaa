"""The platform's vocabulary, shared by every layer: the states things can be in, and who is
asking. No layer below the services needs the database to speak of them.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Protocol

from eyes.errors import BadRequest


def new_key() -> str:
    """An unguessable name for something people may link to: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


KEY_LENGTH = 22  # len(new_key())
MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL, so no row has a larger one


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # in the feed
    UNLISTED = "unlisted"  # whoever has the link
    PRIVATE = "private"  # the owner alone

    @classmethod
    def parse(cls, raw: str | None) -> Visibility:
        """What a person or client said (empty: public), or a clear 400."""
        try:
            return cls(raw or cls.PUBLIC)
        except ValueError:
            raise BadRequest("visibility is one of: public, unlisted, private") from None


class License(enum.StrEnum):
    """The licence an owner gives a photo. Only the open ones let it leave in a data set export."""

    ALL_RIGHTS_RESERVED = "all-rights-reserved"  # the default: nobody else may reuse it
    CC0 = "cc0"
    CC_BY = "cc-by"
    CC_BY_SA = "cc-by-sa"

    @classmethod
    def parse(cls, raw: str | None, default: License | None = None) -> License:
        """What a person or client said (empty: `default`, else all rights reserved), or a clear 400."""
        if not raw:
            return default or cls.ALL_RIGHTS_RESERVED
        try:
            return cls(raw.strip().lower())
        except ValueError:
            raise BadRequest(f"license is one of: {', '.join(cls)}") from None

    @property
    def display_name(self) -> str:
        return _LICENSE_NAMES[self]

    @property
    def url(self) -> str | None:
        return _LICENSE_URLS.get(self)

    @property
    def exportable(self) -> bool:
        """Whether a photo under this licence may be copied into a data set others take away."""
        return self != License.ALL_RIGHTS_RESERVED


_LICENSE_NAMES = {
    License.ALL_RIGHTS_RESERVED: "All rights reserved",
    License.CC0: "CC0 1.0 (public domain)",
    License.CC_BY: "CC BY 4.0 (attribution)",
    License.CC_BY_SA: "CC BY-SA 4.0 (attribution, share alike)",
}
_LICENSE_URLS = {
    License.CC0: "https://creativecommons.org/publicdomain/zero/1.0/",
    License.CC_BY: "https://creativecommons.org/licenses/by/4.0/",
    License.CC_BY_SA: "https://creativecommons.org/licenses/by-sa/4.0/",
}


class TaggingState(enum.StrEnum):
    PENDING = "pending"  # the database, not the queue, says this photo still needs its tags
    DONE = "done"
    UNTAGGABLE = "untaggable"  # stored and shown, but the network cannot read it (reason kept)


class TagSource(enum.StrEnum):
    USER = "user"
    MODEL = "model"


class TagStatus(enum.StrEnum):
    SUGGESTED = "suggested"  # a model's proposal nobody has decided on
    CONFIRMED = "confirmed"  # set or confirmed by the owner
    REJECTED = "rejected"  # rejected by the owner: never suggested again


class TrainingDepth(enum.StrEnum):
    HEAD = "head"  # a head on the stored embeddings: seconds
    DEEP = "deep"  # the top of the backbone fine-tuned with the head, from stored activations: minutes


class PersonAudience(enum.StrEnum):
    """Who sees that a person is in a photo (their `person:` tag). Never more than may see the photo."""

    OWNER = "owner"  # the owner alone: the default
    CHOSEN = "chosen"  # the owner and the accounts they chose (person_viewers)
    VIEWERS = "viewers"  # whoever may see the photo


class ModelStage(enum.StrEnum):
    TRAINING = "training"  # a run is under way (one at a time)
    CANDIDATE = "candidate"  # trained and stored, not yet judged
    CHAMPION = "champion"  # the one in service (the `serving` row points at it)
    RETIRED = "retired"  # was champion, replaced by a better one (rollback can bring it back)
    REJECTED = "rejected"  # lost to the champion at the promotion gate; the reason is kept
    FAILED = "failed"  # the run broke or was killed; never usable


class ReportReason(enum.StrEnum):
    """Why someone reports a photo."""

    SEXUAL = "sexual"  # sexual content or nudity where it does not belong
    VIOLENCE = "violence"  # violence, gore
    HARASSMENT = "harassment"  # harassment, hate, someone's private life
    SPAM = "spam"
    COPYRIGHT = "copyright"  # not the uploader's to share
    OTHER = "other"

    @classmethod
    def parse(cls, raw: str | None) -> ReportReason:
        try:
            return cls(raw or "")
        except ValueError:
            raise BadRequest("a report's reason is one of: " + ", ".join(r.value for r in cls)) from None


class PhotoOrder(enum.StrEnum):
    """How a list of photos is ordered (`?sort=`)."""

    NEW = "new"  # the newest upload first
    TAKEN = "taken"  # the most recently taken first (EXIF, or an import's file date); undated last


def version_name(version_id: int) -> str:
    """How people and files name a model version: `v7`."""
    return f"v{version_id}"


class Account(Protocol):
    """Who is asking: what the web layer and the services read of an account (an `accounts` row
    satisfies it)."""

    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...

    @property
    def private_photos_teach(self) -> bool: ...

    @property
    def default_license(self) -> License: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def show_sensitive(self) -> bool: ...

    @property
    def faces_enabled(self) -> bool: ...
