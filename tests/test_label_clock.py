"""The sweep reads the label clock instead of recounting every label (issue 10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Photo
from eyes.domain import Visibility
from eyes.services import label_clock, labels, photos, training, vocabulary
from eyes.services.accounts import create_user, update_preferences


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings.model_copy(update={"auto_train_after": 1000}))
    context.jobs = None
    yield context
    context.close()


def test_the_automatic_run_check_recounts_only_when_the_labels_move(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = create_user(ctx, "owner", "a long password")
    voter = create_user(ctx, "voter", "a long password")
    path = tmp_path / "p.png"
    Image.new("RGB", (40, 30), (9, 80, 200)).save(path)
    up = photos.upload_photo(ctx, owner.id, path, photos.PhotoDraft("p.png", tags=("sky",)))
    counted = []
    real = training.label_growth
    monkeypatch.setattr(training, "label_growth", lambda c, *a: counted.append(1) or real(c, *a))

    for _ in range(5):  # five sweeps, nothing new
        training.maybe_start_automatic_run(ctx)
    assert len(counted) == 1, "counted once, then the clock said nothing moved"
    before = label_clock.ticks(ctx)
    with ctx.sessions() as session:
        key = session.get_one(Photo, up.photo_id).public_id
    labels.cast_vote(ctx, key, voter, "cloud", agrees=True)
    assert label_clock.ticks(ctx) == before + 1, "a vote moves the clock"
    training.maybe_start_automatic_run(ctx)
    assert len(counted) == 2, "and the next sweep counts again"
    photos.update_photo(ctx, key, owner, visibility=Visibility.PRIVATE)
    assert label_clock.ticks(ctx) == before + 2, "so does a change of what may teach"


MUTATIONS = {
    "owner adds a tag": lambda ctx, owner, key: photos.add_owner_tags(ctx, key, owner, ["sea"]),
    "owner removes a tag": lambda ctx, owner, key: photos.remove_owner_tag(ctx, key, owner, "sky"),
    "owner deletes the photo": lambda ctx, owner, key: photos.delete_photo(ctx, key, owner),
    "owner lets private photos teach": lambda ctx, owner, key: update_preferences(
        ctx, owner, private_photos_teach=True
    ),
    "an administrator approves a class": lambda ctx, owner, key: vocabulary.approve(ctx, None, ["sky"]),
    "an administrator nests a class": lambda ctx, owner, key: vocabulary.set_parent(ctx, None, "sky", "air"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_everything_a_label_rests_on_moves_the_clock(ctx: Context, tmp_path: Path, mutation: str) -> None:
    owner = create_user(ctx, "owner", "a long password")
    path = tmp_path / "p.png"
    Image.new("RGB", (40, 30), (9, 80, 200)).save(path)
    up = photos.upload_photo(ctx, owner.id, path, photos.PhotoDraft("p.png", tags=("sky",)))
    with ctx.sessions() as session:
        key = session.get_one(Photo, up.photo_id).public_id
    before = label_clock.ticks(ctx)
    MUTATIONS[mutation](ctx, owner, key)
    assert label_clock.ticks(ctx) > before, f"{mutation} must make the next sweep count again"
