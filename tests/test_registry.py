"""The registry: which version is champion, promotion, rollback, and files checked before use.
Versions here are rows with small heads written by the registry itself: no training needed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import ModelVersion
from eyes.db.session import transaction
from eyes.domain import ModelStage
from eyes.errors import BadRequest, Conflict, NotFound
from eyes.ml.errors import ModelFileError
from eyes.ml.head import Head
from eyes.services import registry
from tests.test_queue import Recorder


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    context.jobs = Recorder()
    yield context
    context.close()


def make_version(ctx: Context, vocabulary: tuple[str, ...] = ("cat", "dog")) -> int:
    """A finished candidate with a head (1280 features) and its card, as a training run leaves it."""
    k, dim = len(vocabulary), 1280
    head = Head(
        list(vocabulary), np.zeros((dim, k), np.float32), np.zeros(k, np.float32),
        np.zeros(dim, np.float32), np.ones(dim, np.float32), np.full(k, 0.5, np.float32),
    )  # fmt: skip
    with transaction(ctx.sessions) as session:
        version = ModelVersion(stage=ModelStage.CANDIDATE)
        session.add(version)
        session.flush()
        version_id = version.id
    sha = registry.store_version_files(ctx, version_id, head, {}, ["a" * 64], {})
    with transaction(ctx.sessions) as session:
        session.get_one(ModelVersion, version_id).head_sha256 = sha
    return version_id


def stages(ctx: Context) -> dict[int, str]:
    return {v.id: v.stage.value for v in registry.list_versions(ctx)}


def test_promotion_puts_one_champion_in_service_and_asks_for_a_retag(ctx: Context) -> None:
    first, second = make_version(ctx), make_version(ctx)
    assert registry.champion_id(ctx) is None, "the day-one model serves before anything is promoted"
    registry.promote(ctx, first, reason="better on the held-out photos")
    registry.promote(ctx, second)
    assert registry.champion_id(ctx) == second
    assert stages(ctx) == {first: "retired", second: "champion"}
    assert ctx.jobs.tasks == [("retag", ()), ("retag", ())]  # type: ignore[union-attr]
    registry.promote(ctx, second)  # already in service: nothing changes, nothing is re-tagged
    assert len(ctx.jobs.tasks) == 2  # type: ignore[union-attr]
    assert registry.describe_version(ctx, f"v{first}")["reason"] == "better on the held-out photos"


def test_a_version_with_altered_weights_is_refused_and_the_champion_stays(ctx: Context) -> None:
    good, altered = make_version(ctx), make_version(ctx)
    registry.promote(ctx, good)
    ctx.blobs.put_bytes(registry.head_key(altered), b"not the weights the card vouches for")
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        registry.promote(ctx, altered)
    assert registry.champion_id(ctx) == good


def test_rollback_walks_back_through_the_promotions_to_the_day_one_model(ctx: Context) -> None:
    a, b, c = make_version(ctx), make_version(ctx), make_version(ctx)
    for version_id in (a, b, c):
        registry.promote(ctx, version_id)
    assert registry.rollback(ctx) == b
    assert registry.rollback(ctx) == a, "a second rollback goes one further back"
    assert registry.rollback(ctx) is None and registry.champion_id(ctx) is None
    with pytest.raises(Conflict, match="nothing to roll back"):
        registry.rollback(ctx)
    registry.promote(ctx, c)  # promoting again starts a new history
    assert registry.rollback(ctx) is None


@pytest.mark.parametrize(("name", "expected"), [("v3", 3), ("V3", 3), ("3", 3), ("v2147483647", 2147483647)])
def test_version_names_read_as_people_type_them(name: str, expected: int) -> None:
    assert registry.parse_version(name) == expected


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("latest", BadRequest),
        ("v-1", BadRequest),
        ("v٣", BadRequest),
        ("v0", NotFound),
        ("v2147483648", NotFound),
    ],
)
def test_a_bad_version_name_is_a_clear_4xx(name: str, error: type[Exception]) -> None:
    with pytest.raises(error, match="v3|eyes models list"):
        registry.parse_version(name)


def test_describing_an_unknown_version_is_not_found(ctx: Context) -> None:
    with pytest.raises(NotFound, match="eyes models list"):
        registry.describe_version(ctx, "v99")
