"""A deep run on a few real photos: the top of the backbone fine-tuned in a child process, served
from stored activations without torch, re-tagging without decoding an original again."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Activation, Image, ModelVersion, PhotoTag, Tag
from eyes.db.session import transaction
from eyes.domain import ModelStage, TrainingDepth
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task
from eyes.services import registry, training
from eyes.services.accounts import create_user
from eyes.services.classify import classify_file
from eyes.services.importer import import_tree
from tests.conftest import CALTECH
from tests.test_charts import chart_titles
from tests.test_learning import assert_model_charts, labelled_tree

pytestmark = pytest.mark.slow


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    loop = settings.model_copy(
        update={"min_labels_per_tag": 3, "min_owners_per_tag": 1, "auto_train_after": 0}
    )
    context = build_context(loop)
    context.jobs = ImmediateQueue(partial(run_task, context))
    create_user(context, "owner", "a long password", admin=True)
    yield context
    context.close()


def test_a_deep_run_is_a_version_like_any_other(ctx: Context, tmp_path: Path) -> None:
    tree = labelled_tree(tmp_path, 10)
    import_tree(ctx, tree, owner="owner", tags_from_folders=True, progress=False)
    unlabelled = sorted((CALTECH / "Leopards").iterdir())[-2]  # a leopard nobody has tagged
    newcomer = import_tree(ctx, unlabelled, owner="owner", progress=False).photo_ids[0]
    with ctx.sessions() as session:
        images = session.scalar(select(func.count()).select_from(Image))
        stored = session.scalar(select(func.count()).select_from(Activation))
    assert images == stored == 31, "every upload stores the activation a tuned top starts from"

    version_id = training.start_run(ctx, None, depth=TrainingDepth.DEEP)
    with ctx.sessions() as session:
        version = session.get_one(ModelVersion, version_id)
        info = registry.describe(version, registry.champion_id(ctx))
    assert info["stage"] == "champion", info["reason"]
    assert info["depth"] == "deep" and version.depth == TrainingDepth.DEEP
    assert info["n_held_out"] > 0 and info["metrics"]["accuracy"] >= 0.8
    card = registry.load_card(ctx, version_id)
    assert set(card["files"]) == {registry.TOP_FILE, registry.TRAINING_SET}
    assert ctx.tagger.champion(force_refresh=True).needs_activations

    # Re-tagging reads the stored activations: with every original gone, it still works, and the
    # untagged leopard carries the deep version's suggestion.
    for key in list(ctx.blobs.keys("originals/")):
        ctx.blobs.delete(key)
    from eyes.services.tagging import retag_all

    assert retag_all(ctx) == 31, "re-tagging needs no original"
    with ctx.sessions() as session:
        suggested = session.execute(
            select(Tag.name, PhotoTag.model_version).join(Tag).where(PhotoTag.photo_id == newcomer)
        ).all()
    assert ("leopards", f"v{version_id}") in suggested

    leopard = sorted((CALTECH / "Leopards").iterdir())[-1]  # never uploaded
    result = classify_file(ctx, leopard)
    assert result.model_version == f"v{version_id}" and result.tags[0][0] == "leopards"

    # A changed backbone rolls back like any version.
    assert registry.rollback(ctx) is None
    assert not ctx.tagger.champion(force_refresh=True).needs_activations


def test_an_embedding_from_an_older_backbone_is_replaced_once(ctx: Context, tmp_path: Path) -> None:
    """Installs from before activations were kept hold embeddings of another backbone id: they are
    computed again once and replaced, with the activation beside them."""
    from sqlalchemy import update

    from eyes.db.models import Embedding
    from eyes.services.tagging import embeddings_for

    photo = sorted((CALTECH / "watch").iterdir())[0]
    import_tree(ctx, photo, owner="owner", progress=False)
    with transaction(ctx.sessions) as session:
        session.execute(update(Embedding).values(backbone="efficientnet-lite0-old"))
        session.execute(Activation.__table__.delete())
        sha = session.scalar(select(Embedding.sha256))
    vectors, failures = embeddings_for(ctx, [sha])
    assert sha in vectors and not failures
    with ctx.sessions() as session:
        assert session.scalar(select(Embedding.backbone)) == ctx.tagger.backbone_id
        assert session.scalar(select(func.count()).select_from(Activation)) == 1


def test_the_model_page_of_a_deep_version(settings: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from eyes.app import create_app
    from tests.conftest import sign_up

    loop = settings.model_copy(
        update={"min_labels_per_tag": 3, "min_owners_per_tag": 1, "auto_train_after": 0}
    )
    with TestClient(create_app(loop), base_url="http://127.0.0.1") as client:
        sign_up(client, "boss")
        ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
        tree = labelled_tree(tmp_path, 8)
        import_tree(ctx, tree, owner="boss", tags_from_folders=True, progress=False)
        assert client.post("/api/v1/models/train", json={"depth": "deep"}).json()["depth"] == "deep"
        ctx.jobs.wait_idle(300)  # type: ignore[union-attr]
        info = client.get("/api/v1/models/v1").json()
        assert info["depth"] == "deep" and info["fine_tuning"]["config"]["tune_from"] == 16
        page = client.get("/models/v1").text
        assert "Deep run" in page and "24 photos" in page and 'id="baseline"' in page
        # A deep run's held-out evidence comes from its folds, not from a part kept aside per epoch.
        assert_model_charts(chart_titles(page), ["airplanes", "leopards", "watch"], validation=False)


def test_deep_runs_start_by_themselves_when_labels_grow_or_on_schedule(ctx: Context, tmp_path: Path) -> None:
    tree = labelled_tree(tmp_path, 6)
    import_tree(ctx, tree, owner="owner", tags_from_folders=True, progress=False)
    ctx.jobs = None  # record the runs, do not run them
    base = ctx.settings.model_copy(update={"auto_train_after": 1, "deep_train_after": 10})

    def start(**settings: float) -> TrainingDepth:
        with transaction(ctx.sessions) as session:  # the previous run is over (as if it had run)
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.stage == ModelStage.TRAINING)
                .values(stage=ModelStage.REJECTED)
            )
        ctx.settings = base.model_copy(update=settings)
        version_id = training.maybe_start_automatic_run(ctx)
        assert version_id is not None
        with ctx.sessions() as session:
            return session.get_one(ModelVersion, version_id).depth

    assert start(deep_min_labels_per_tag=10) == TrainingDepth.HEAD, "6 labels per class: a head is better"
    assert start(deep_min_labels_per_tag=5) == TrainingDepth.DEEP, "18 new labels and 6 per class"
    extra = sorted((CALTECH / "watch").iterdir())[10]
    import_tree(ctx, extra, owner="owner", progress=False)
    from eyes.db.models import Photo, User
    from eyes.services.photos import add_owner_tags

    with ctx.sessions() as session:
        owner = session.scalars(select(User)).one()
        newest = session.scalars(select(Photo.public_id).order_by(Photo.id.desc())).first()
    add_owner_tags(ctx, str(newest), owner, ["watch"])
    assert start(deep_min_labels_per_tag=5) == TrainingDepth.HEAD, "one new label is no reason for a deep run"
    assert start(deep_min_labels_per_tag=5, deep_train_every_h=1e-9) == TrainingDepth.DEEP, (
        "but the schedule is"
    )


def test_unlabelled_photos_of_fresh_accounts_teach_no_pseudo_labels(ctx: Context, tmp_path: Path) -> None:
    """A burst of uploads from accounts made for the purpose must not steer the pseudo-labels."""
    from datetime import UTC, datetime, timedelta

    from eyes.db.models import User

    import_tree(ctx, labelled_tree(tmp_path, 2), owner="owner", progress=False)
    assert len(training.unlabelled_embeddings(ctx, set(), 100)) == 0, "the owner's account is new"
    with transaction(ctx.sessions) as session:
        session.execute(update(User).values(created_at=datetime.now(UTC) - timedelta(days=30)))
    assert len(training.unlabelled_embeddings(ctx, set(), 100)) == 6
    assert len(training.unlabelled_embeddings(ctx, set(), 4)) == 4, "at most the limit"
