"""The attack of the issue, replayed: fresh accounts try to teach the model made-up tags.

Two established owners share 20 public photos; a model trained on their tags is in service. Ten
accounts made a minute ago vote two made-up tags onto every photo, then upload photos of their own
with those tags. No class appears, no run is started or promoted, no photo is re-tagged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import ModelVersion, Photo, PhotoTag, Tag, User
from eyes.db.session import transaction
from eyes.domain import TagSource
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task, sweep
from eyes.services import labels, training
from eyes.services.accounts import create_user
from eyes.services.dashboard import overview
from eyes.services.importer import import_tree
from eyes.services.photos import PhotoDraft, upload_photo
from tests.conftest import CALTECH

pytestmark = pytest.mark.slow
MADE_UP = ("blorb", "zazzle")


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    loop = settings.model_copy(update={"min_labels_per_tag": 5, "auto_train_after": 1})
    context = build_context(loop)
    context.jobs = ImmediateQueue(partial(run_task, context))
    yield context
    context.close()


def tree(tmp_path: Path, name: str, classes: list[str], start: int, n: int) -> Path:
    root = tmp_path / name
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[start : start + n]:
            (root / cls / src.name).symlink_to(src)
    return root


def test_ten_fresh_accounts_teach_nothing(ctx: Context, tmp_path: Path) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    admin = create_user(ctx, "admin", "a long password", admin=True)
    for name in ("anna", "ben"):
        create_user(ctx, name, "a long password")
    with transaction(ctx.sessions) as session:
        session.execute(update(User).values(created_at=long_ago))
    for i, owner in enumerate(("anna", "ben")):
        import_tree(
            ctx,
            tree(tmp_path, owner, ["watch", "airplanes"], 10 * i, 5),
            owner=owner,
            tags_from_folders=True,
            progress=False,
        )
    from eyes.services import vocabulary

    vocabulary.approve(ctx, admin, ["watch", "airplanes"])
    first = training.start_run(ctx, None)
    with ctx.sessions() as session:
        assert session.get_one(ModelVersion, first).stage.value == "champion"
        photo_ids = list(
            session.scalars(select(Photo.public_id).where(Photo.id.in_(select(PhotoTag.photo_id))))
        )
    assert len(photo_ids) == 20

    sybils = [create_user(ctx, f"sybil{i}", "a long password") for i in range(10)]
    for sybil in sybils:
        for photo_id in photo_ids:
            for tag in MADE_UP:
                labels.cast_vote(ctx, photo_id, sybil, tag, agrees=True)
    # ... and as owners of photos of their own, tagged with the made-up tags.
    starfish = sorted((CALTECH / "starfish").iterdir())
    for sybil, path in zip(sybils, starfish, strict=False):
        upload_photo(ctx, sybil.id, path, PhotoDraft(path.name, tags=MADE_UP))
    sweep(ctx)  # what the timer does: tag what is pending, start a run if enough new labels

    info = overview(ctx, admin=True)
    assert not set(MADE_UP) & set(info["classes"]), "no class"
    assert set(info["waiting"]) == set(MADE_UP), "the owners' own tags wait for an administrator"
    assert overview(ctx, admin=False)["waiting"] == [], "and only administrators see them"
    assert info["since_last"] == 0, "nothing that moves a model"
    with ctx.sessions() as session:
        versions = [(v.id, v.stage.value) for v in session.scalars(select(ModelVersion))]
        learned = session.scalar(
            select(func.count())
            .select_from(PhotoTag)
            .join(Tag)
            .where(Tag.name.in_(MADE_UP), PhotoTag.source == TagSource.MODEL)
        )
    assert versions == [(first, "champion")], "no run, no promotion"
    assert learned == 0, "no photo re-tagged with a made-up tag"
    assert ctx.tagger.version == f"v{first}"
