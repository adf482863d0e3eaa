"""The automatic-run check reads the label clock instead of recounting every label (issue 10):
it counts again only when the labels may have grown enough for a run, or when anything else they
rest on moved."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Photo
from eyes.domain import Account, TrainingDepth, Visibility
from eyes.services import label_clock, labels, photos, training, vocabulary
from eyes.services.accounts import create_user, update_preferences


def make_ctx(settings: Settings, **changes: Any) -> Context:
    context = build_context(settings.model_copy(update=changes))
    context.jobs = None
    return context


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = make_ctx(settings, auto_train_after=1000)
    yield context
    context.close()


def photo_of(ctx: Context, owner: Account, tmp_path: Path, *tags: str, blue: int = 200) -> str:
    """A photo of `owner` with the owner's `tags` (each `blue` another image); its public id."""
    path = tmp_path / "p.png"
    Image.new("RGB", (40, 30), (9, 80, blue)).save(path)
    up = photos.upload_photo(ctx, owner.id, path, photos.PhotoDraft("p.png", tags=tags))
    with ctx.sessions() as session:
        return session.get_one(Photo, up.photo_id).public_id


def count_the_counts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry each time the automatic-run check counts every label."""
    counted: list[int] = []
    real = training.label_growth
    monkeypatch.setattr(training, "label_growth", lambda c, *a: counted.append(1) or real(c, *a))
    return counted


def runs_started(monkeypatch: pytest.MonkeyPatch) -> list[TrainingDepth]:
    """The depth of each run the check starts (recorded, not run)."""
    started: list[TrainingDepth] = []

    def start_run(ctx: Context, user: Any, trigger: str, depth: TrainingDepth) -> int:
        started.append(depth)
        return len(started)

    monkeypatch.setattr(training, "start_run", start_run)
    return started


def test_the_check_counts_only_when_a_run_may_be_due(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = create_user(ctx, "owner", "a long password")
    voter = create_user(ctx, "voter", "a long password")
    key = photo_of(ctx, owner, tmp_path, "sky")
    counted = count_the_counts(monkeypatch)

    for _ in range(5):  # five sweeps, nothing new
        training.maybe_start_automatic_run(ctx)
    assert len(counted) == 1, "counted once, then the clock said nothing moved"
    before = label_clock.read(ctx)
    labels.cast_vote(ctx, key, voter, "cloud", agrees=True)
    after = label_clock.read(ctx)
    assert (after.ticks, after.decisions) == (before.ticks, before.decisions + 1), "a vote is one decision"
    training.maybe_start_automatic_run(ctx)
    assert len(counted) == 1, "one label more cannot reach a run 1,000 labels away: nothing to count"
    photos.update_photo(ctx, key, owner, visibility=Visibility.PRIVATE)
    assert label_clock.read(ctx).ticks == before.ticks + 1, "a change of what may teach moves the clock"
    training.maybe_start_automatic_run(ctx)
    assert len(counted) == 2, "and can move any number of labels: counted again"


def test_a_run_starts_as_soon_as_one_decision_makes_enough_labels_with_the_tags_above_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`granny-smith` within `apple` within `fruit`: the owner's one yes makes three labels."""
    ctx = make_ctx(settings, open_vocabulary=True, auto_train_after=4, deep_train_after=0)
    owner = create_user(ctx, "owner", "a long password")
    vocabulary.set_parent(ctx, None, "granny-smith", "apple")
    vocabulary.set_parent(ctx, None, "apple", "fruit")
    key = photo_of(ctx, owner, tmp_path, "sky")
    started = runs_started(monkeypatch)
    training.maybe_start_automatic_run(ctx)
    assert started == [], "one label of four"

    photos.add_owner_tags(ctx, key, owner, ["granny-smith"])
    training.maybe_start_automatic_run(ctx)
    assert started == [TrainingDepth.HEAD], "four labels: the run starts at this sweep"
    ctx.close()


def test_a_deep_run_starts_when_removing_a_tag_raises_the_labels_per_class(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten photos of `sky` and one of `junk`: 5.5 labels a class, short of the 8 a deep run
    needs. The owner removes `junk`, one decision: 10 a class, and the deep run is due at once."""
    ctx = make_ctx(
        settings, open_vocabulary=True, auto_train_after=50, deep_train_after=3, deep_min_labels_per_tag=8
    )
    owner = create_user(ctx, "owner", "a long password")
    for blue in range(10):
        photo_of(ctx, owner, tmp_path, "sky", blue=blue)
    junk = photo_of(ctx, owner, tmp_path, "junk", blue=100)
    started = runs_started(monkeypatch)
    training.maybe_start_automatic_run(ctx)
    assert started == [], "11 labels, 5.5 a class: no run"

    photos.remove_owner_tag(ctx, junk, owner, "junk")
    training.maybe_start_automatic_run(ctx)
    assert started == [TrainingDepth.DEEP]
    ctx.close()


def test_votes_nobody_trusts_cost_a_count_per_threshold_not_one_per_sweep(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake accounts voting in a stream teach nothing and start nothing; they must not make
    every sweep count every label either."""
    ctx = make_ctx(settings, open_vocabulary=True, auto_train_after=5, deep_train_after=0)
    owner = create_user(ctx, "owner", "a long password")
    key = photo_of(ctx, owner, tmp_path, "sky")
    fakes = [create_user(ctx, f"fake{i}", "a long password") for i in range(3)]
    counted, started = count_the_counts(monkeypatch), runs_started(monkeypatch)
    training.maybe_start_automatic_run(ctx)

    for i in range(12):
        labels.cast_vote(ctx, key, fakes[i % 3], f"made-up-{i // 3}", agrees=True)
        training.maybe_start_automatic_run(ctx)
    assert started == [], "a new account's votes are no training labels"
    # One label counted; each vote could have added one: a count when 4 votes could reach 5.
    assert len(counted) == 1 + 12 // 4, f"counted {len(counted)} times for 12 votes"
    ctx.close()


MUTATIONS: dict[str, Callable[[Context, Account, str], object]] = {
    "owner deletes the photo": lambda ctx, owner, key: photos.delete_photo(ctx, key, owner),
    "owner lets private photos teach": lambda ctx, owner, key: update_preferences(
        ctx, owner, private_photos_teach=True
    ),
    "an administrator approves a class": lambda ctx, owner, key: vocabulary.approve(ctx, None, ["sky"]),
    "an administrator nests a class": lambda ctx, owner, key: vocabulary.set_parent(ctx, None, "sky", "air"),
}
DECISIONS: dict[str, Callable[[Context, Account, str], object]] = {
    "owner adds a tag": lambda ctx, owner, key: photos.add_owner_tags(ctx, key, owner, ["sea"]),
    "owner removes a tag": lambda ctx, owner, key: photos.remove_owner_tag(ctx, key, owner, "sky"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_change_that_can_move_any_number_of_labels_moves_the_clock(
    ctx: Context, tmp_path: Path, mutation: str
) -> None:
    owner = create_user(ctx, "owner", "a long password")
    key = photo_of(ctx, owner, tmp_path, "sky")
    before = label_clock.read(ctx)
    MUTATIONS[mutation](ctx, owner, key)
    assert label_clock.read(ctx).ticks > before.ticks, f"{mutation} must make the next sweep count again"


@pytest.mark.parametrize("decision", list(DECISIONS))
def test_an_owners_yes_or_no_is_one_decision(ctx: Context, tmp_path: Path, decision: str) -> None:
    owner = create_user(ctx, "owner", "a long password")
    key = photo_of(ctx, owner, tmp_path, "sky")
    before = label_clock.read(ctx)
    DECISIONS[decision](ctx, owner, key)
    assert label_clock.read(ctx) == label_clock.Reading(before.ticks, before.decisions + 1)


def test_an_administrators_tag_approves_its_class_and_moves_the_clock(ctx: Context, tmp_path: Path) -> None:
    admin = create_user(ctx, "admin", "a long password", admin=True)
    key = photo_of(ctx, admin, tmp_path)
    before = label_clock.read(ctx)
    photos.add_owner_tags(ctx, key, admin, ["sea"])
    assert label_clock.read(ctx).ticks == before.ticks + 1, "every label of `sea` may count now"
