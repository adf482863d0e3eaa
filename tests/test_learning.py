"""The learning loop: votes, training-grade labels, training, the gate, promotion, re-tagging."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import ModelVersion, Photo, PhotoTag, Tag, User
from eyes.db.session import transaction
from eyes.domain import ModelStage, TagStatus
from eyes.errors import Conflict
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task
from eyes.ml.errors import ModelFileError
from eyes.services import gate, registry, training, training_set
from eyes.services.accounts import create_user
from eyes.services.importer import import_tree
from eyes.services.labels import class_vocabulary, training_labels, vote
from eyes.services.photos import delete_photo
from eyes.services.vocabulary import Hierarchy
from tests.conftest import CALTECH, sign_up
from tests.test_charts import chart_titles
from tests.test_cli import eyes

pytestmark = pytest.mark.slow
CLASSES = ["Leopards", "airplanes", "watch"]


@pytest.fixture
def loop_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "min_labels_per_tag": 3,
            "min_owners_per_tag": 1,
            "auto_train_after": 0,
            "min_votes_to_agree": 2,
            # These tests are about the loop, not about trust (tests/test_trust.py): every voter counts.
            "trust_min_account_age_days": 0,
            "trust_min_agreements": 0,
        }
    )


def assert_model_charts(titles: list[str], classes: list[str], *, validation: bool = True) -> None:
    """A version's page charts its loss and accuracy per epoch (on a held-out part too, unless
    the run kept none aside), each tag's precision and recall, and the confusion of its classes,
    mostly on the diagonal (a class may be missing from a small held-out sample)."""
    for series in ("train", "validation") if validation else ("train",):
        assert sum(t.startswith(f"{series}, epoch 1: ") for t in titles) == 2, f"{series} loss and accuracy"
    for name in classes:
        assert any(t.startswith(f"{name} precision: ") for t in titles)
        assert any(t.startswith(f"{name} recall: ") for t in titles)
    cells = {t.rsplit(": ", 1)[0]: int(t.rsplit(": ", 1)[1]) for t in titles if t.startswith("true ")}
    assert len(cells) == len(classes) ** 2, cells
    right = sum(cells[f"true {name}, predicted {name}"] for name in classes)
    assert right > 0 and right >= sum(cells.values()) - right, cells


def labelled_tree(tmp_path: Path, per_class: int, classes: list[str] = CLASSES) -> Path:
    tree = tmp_path / "labelled"
    for cls in classes:
        (tree / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[:per_class]:
            (tree / cls / src.name).symlink_to(src)
    return tree


@pytest.fixture
def ctx(loop_settings: Settings) -> Iterator[Context]:
    from functools import partial

    context = build_context(loop_settings)
    context.jobs = ImmediateQueue(partial(run_task, context))
    create_user(context, "owner", "a long password", admin=True)
    yield context
    context.close()


def stages(ctx: Context) -> dict[int, str]:
    with ctx.sessions() as session:
        return {v.id: v.stage.value for v in session.scalars(select(ModelVersion))}


def test_votes_make_training_grade_labels_and_owner_wins(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 1, ["watch"]), owner="owner", progress=False)
    users = [create_user(ctx, f"voter{i}", "a long password") for i in range(3)]
    with transaction(ctx.sessions) as session:
        owner = session.scalars(select(User).where(User.username == "owner")).one()
        photo = session.scalars(select(Photo)).one()
        vote(session, photo, users[0], "clock", True)
        vote(session, photo, users[0], "clock", True)  # one vote per user: no double counting
    with ctx.sessions() as session:
        labels = training_labels(session, ctx.settings)
    assert "clock" not in labels.positives.get(photo.sha256, set()), "one confirmation is not enough"

    with transaction(ctx.sessions) as session:
        photo = session.get_one(Photo, photo.id)
        vote(session, photo, users[1], "clock", True)
    with ctx.sessions() as session:
        assert "clock" in training_labels(session, ctx.settings).positives[photo.sha256]

    with transaction(ctx.sessions) as session:
        photo = session.get_one(Photo, photo.id)
        vote(session, photo, users[2], "clock", False)
        vote(session, photo, users[0], "clock", False)  # changes their mind: 1 yes, 2 no
    with ctx.sessions() as session:
        assert "clock" not in training_labels(session, ctx.settings).positives[photo.sha256]

    with transaction(ctx.sessions) as session:
        photo = session.get_one(Photo, photo.id)
        vote(session, photo, owner, "clock", True)  # the owner's decision wins over the votes
    with ctx.sessions() as session:
        assert "clock" in training_labels(session, ctx.settings).positives[photo.sha256]


def test_vocabulary_needs_enough_photos_from_enough_owners(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 3), owner="owner", tags_from_folders=True, progress=False)
    two_owners = ctx.settings.model_copy(update={"min_owners_per_tag": 2})
    with ctx.sessions() as session:
        labels = training_labels(session, ctx.settings)
        assert class_vocabulary(session, labels, ctx.settings, set()).classes == [
            "airplanes",
            "leopards",
            "watch",
        ]
        assert class_vocabulary(session, labels, two_owners, set()).classes == [], (
            "one account cannot teach the model alone"
        )


def test_train_promote_retag_and_keep_people_tags(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 12), owner="owner", tags_from_folders=True, progress=False)
    unlabelled = sorted((CALTECH / "Leopards").iterdir())[-1]  # a leopard nobody has tagged
    new_photo = import_tree(ctx, unlabelled, owner="owner", progress=False).photo_ids[0]
    version_id = training.start_run(ctx, None)
    with ctx.sessions() as session:
        v = session.get_one(ModelVersion, version_id)
        info = registry.describe(v, registry.champion_id(ctx))
    assert info["stage"] == "champion", info["reason"]
    assert info["vocabulary"] == ["airplanes", "leopards", "watch"]
    metrics = info["metrics"]
    # Three easy caltech classes, 12 photos each: 1.0 on each measure when this was written.
    assert metrics["accuracy"] >= 0.9 and metrics["macro_f1"] >= 0.9 and metrics["map"] >= 0.9, metrics
    assert set(metrics["per_tag"]) == set(info["vocabulary"])
    assert len(info["history"]) > 1 and info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]
    assert len(metrics["confusion"]) == 3

    card = registry.load_card(ctx, version_id)
    assert card["head_sha256"] == info["head_sha256"] and card["backbone"] == ctx.tagger.backbone_id
    assert len(card["photo_ids"]) == 36 and set(card["thresholds"]) == set(info["vocabulary"])

    # Every photo was re-tagged by v1; the owner's confirmed folder tags were not touched.
    with ctx.sessions() as session:
        rows = session.execute(select(PhotoTag.model_version, PhotoTag.status, PhotoTag.source)).all()
    assert {r.model_version for r in rows if r.source == "model"} <= {
        f"v{version_id}",
        ctx.tagger.day_one_version,
    }
    with ctx.sessions() as session:
        suggested = session.execute(
            select(PhotoTag.model_version)
            .join(Tag)
            .where(PhotoTag.photo_id == new_photo, Tag.name == "leopards")
        ).scalar_one()
    assert suggested == f"v{version_id}", "the untagged leopard is re-tagged by the new champion"
    assert sum(1 for r in rows if r.status == TagStatus.CONFIRMED) == 36
    assert ctx.tagger.version == f"v{version_id}"


def test_gate_rejects_a_candidate_that_does_not_beat_the_champion(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    first = training.start_run(ctx, None)
    assert stages(ctx)[first] == "champion"
    ctx.settings = ctx.settings.model_copy(update={"promotion_margin": -0.5})  # must win by 50 points
    second = training.start_run(ctx, None)
    assert stages(ctx) == {first: "champion", second: "rejected"}
    with ctx.sessions() as session:
        reason = session.get_one(ModelVersion, second).reason
    assert "rejected" in reason and "champion" in reason


def test_gate_compares_on_the_same_held_out_photos(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    first = training.start_run(ctx, None)
    champion = ctx.tagger.champion(force_refresh=True)
    assert champion.name == f"v{first}" and len(champion.trained_on) == 30, "the card keeps what it saw"
    with ctx.sessions() as session:
        labels = training_labels(session, ctx.settings)
    data = training_set.build_dataset(ctx, labels, champion.vocabulary, Hierarchy({}))
    head = champion.head
    assert head is not None
    everything = np.ones(len(data.shas), dtype=bool)
    rng = np.random.default_rng(1)
    noise = training_set.Evidence(rng.random(data.y.shape).astype(np.float32), everything)
    verdict = gate.compare_with_champion(ctx, champion, data, noise, head)
    assert verdict["promote"] is False and verdict["candidate_accuracy"] < verdict["champion_accuracy"]
    assert verdict["unseen_by_champion"] is False, (
        "no photo is new to the champion: it is judged on what it saw"
    )
    exact = training_set.Evidence(data.y.copy(), everything)
    assert gate.compare_with_champion(ctx, champion, data, exact, head)["promote"] is True
    # One photo worse than a champion that is right everywhere is within the noise: kept in.
    one_off = data.y.copy()
    one_off[0] = np.roll(one_off[0], 1)
    ctx.settings = ctx.settings.model_copy(update={"promotion_margin": 0.0})
    verdict = gate.compare_with_champion(
        ctx, champion, data, training_set.Evidence(one_off, everything), head
    )
    assert verdict["candidate_accuracy"] < verdict["champion_accuracy"] and verdict["promote"] is True
    assert verdict["only_champion_right"] == 1


def test_a_crashed_run_leaves_the_champion_and_nothing_usable(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    first = training.start_run(ctx, None)

    def crash(*args: object, **kwargs: object) -> None:
        raise MemoryError("killed in the middle")

    monkeypatch.setattr(training, "train_head", crash)
    second = training.start_run(ctx, None)
    assert stages(ctx) == {first: "champion", second: "failed"}
    with pytest.raises(ModelFileError):
        registry.promote(ctx, second)
    assert ctx.tagger.version == f"v{first}"


def test_a_killed_worker_run_is_failed_by_the_sweep(ctx: Context) -> None:
    """A process killed mid-run leaves a 'training' row that stops beating; the sweep fails it
    and a new run can start."""
    ctx.jobs = None
    stale = training.start_run(ctx, None)  # queued, but no worker will ever run it
    ctx.settings = ctx.settings.model_copy(update={"training_timeout_s": 0})
    training.fail_stale_runs(ctx)
    assert stages(ctx)[stale] == "failed"
    assert registry.champion_id(ctx) is None


def test_corrupt_version_file_is_refused(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    first = training.start_run(ctx, None)
    ctx.blobs.put_bytes(registry.head_key(first), b"garbage")
    with pytest.raises(ModelFileError) as err:
        registry.promote(ctx, first)
    assert "checksum" in str(err.value) and registry.head_key(first) in str(err.value)


def test_two_promotions_at_once_leave_exactly_one_champion(ctx: Context, tmp_path: Path) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    ctx.settings = ctx.settings.model_copy(update={"promotion_margin": -1.0})
    ids = [training.start_run(ctx, None) for _ in range(3)]  # all rejected: candidates to promote
    ctx.jobs = None
    barrier = threading.Barrier(2)

    def promote(version_id: int) -> None:
        barrier.wait()
        registry.promote(ctx, version_id)

    for _ in range(3):
        threads = [threading.Thread(target=promote, args=(v,)) for v in ids[:2]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with ctx.sessions() as session:
            champions = session.scalar(select(func.count()).where(ModelVersion.stage == ModelStage.CHAMPION))
        serving = registry.champion_id(ctx)
        assert champions == 1 and serving in ids[:2] and stages(ctx)[serving] == "champion"
        ids[:2] = ids[1::-1]


def test_each_rollback_goes_one_version_further_back(ctx: Context, tmp_path: Path) -> None:
    """The probe of issue 10: a second rollback re-promoted the version just rolled back."""
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    ctx.settings = ctx.settings.model_copy(update={"promotion_margin": -1.0})
    ids = [training.start_run(ctx, None) for _ in range(3)]
    ctx.jobs = None
    for version_id in ids:
        registry.promote(ctx, version_id)
    serving = []
    for _ in range(3):
        registry.rollback(ctx)
        serving.append(registry.champion_id(ctx))
    assert serving == [ids[1], ids[0], None], "v3 -> v2 -> v1 -> the day-one model"
    with pytest.raises(Conflict):
        registry.rollback(ctx)
    registry.promote(ctx, ids[2])  # promoting again starts a new history
    assert registry.rollback(ctx) is None


def test_deleting_a_photo_during_training_does_not_break_the_run(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    real = training.train_head
    with ctx.sessions() as session:
        owner = session.scalars(select(User)).first()
        victims = list(session.scalars(select(Photo.public_id).limit(3)))

    def train_while_deleting(*args, **kwargs):  # type: ignore[no-untyped-def]
        while victims:  # during the first fit of the run
            delete_photo(ctx, victims.pop(), owner)  # type: ignore[arg-type]
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_head", train_while_deleting)
    version_id = training.start_run(ctx, None)
    assert stages(ctx)[version_id] == "champion"


def test_a_second_server_uses_the_new_champion_without_restart(
    loop_settings: Settings, tmp_path: Path
) -> None:
    fast = loop_settings.model_copy(update={"model_refresh_s": 0.2})
    with (
        TestClient(create_app(fast), base_url="http://127.0.0.1") as one,
        TestClient(create_app(fast), base_url="http://127.0.0.1") as two,
    ):
        sign_up(one, "admin1")
        day_one = two.app.state.ctx.tagger.version  # type: ignore[attr-defined]
        ctx1: Context = one.app.state.ctx  # type: ignore[attr-defined]
        import_tree(ctx1, labelled_tree(tmp_path, 10), owner="admin1", tags_from_folders=True, progress=False)
        started = one.post("/api/v1/models/train")
        assert started.status_code == 202
        name = started.json()["version"]
        # Either server's worker may run it (both sweeps hand out the run; one claims it).
        deadline = time.monotonic() + 120
        # "candidate" is trained but not yet judged: wait for the gate's verdict too.
        while (stage := one.get(f"/api/v1/models/{name}").json()["stage"]) in ("training", "candidate"):
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.2)
        assert stage == "champion"
        leopard = min((CALTECH / "Leopards").iterdir()).read_bytes()
        sign_up(two, "visitor")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            body = two.post("/api/v1/classify", files={"file": ("l.jpg", leopard, "image/jpeg")}).json()
            if body["model_version"] == name:
                break
            time.sleep(0.2)
        assert body["model_version"] == name and day_one != name
        assert body["tags"][0]["name"] == "leopards"


def test_dashboard_and_help_pages(loop_settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(loop_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "boss")
        ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
        import_tree(ctx, labelled_tree(tmp_path, 10), owner="boss", tags_from_folders=True, progress=False)
        untagged = tmp_path / "untagged"
        untagged.mkdir()
        for src in sorted((CALTECH / "starfish").iterdir())[:3]:
            (untagged / src.name).symlink_to(src)
        import_tree(ctx, untagged, owner="boss", progress=False)
        client.post("/models/train")
        ctx.jobs.wait_idle(120)  # type: ignore[union-attr]
        page = client.get("/models").text
        assert "v1" in page and "champion" in page
        progress = chart_titles(page)
        dots = dict(t.rsplit(": ", 1) for t in progress)  # the one version is a dot per series
        assert set(dots) == {"accuracy, v1", "logistic regression, same labels, v1"}
        assert all(0.9 <= float(value) <= 1 for value in dots.values()), dots
        detail = client.get("/models/v1").text
        assert_model_charts(chart_titles(detail), ["airplanes", "leopards", "watch"])
        assert "promoted" in detail

        client.cookies.clear()
        sign_up(client, "helper")
        learn = client.get("/learn").text
        ids = re.findall(r'data-photo-id="([\w-]+)"', learn)
        assert ids, "uncertain photos are offered"
        res = client.post(
            f"/learn/{ids[0]}", data={"choice": "other", "other": "spots"}, follow_redirects=False
        )
        assert res.status_code == 303
        assert ids[0] not in re.findall(r'data-photo-id="([\w-]+)"', client.get("/learn").text)
        votes = client.post(f"/api/v1/photos/{ids[0]}/votes", json={"tag": "spots", "agrees": False}).json()
        assert votes == [{"tag": "spots", "agree": 0, "disagree": 1}]


def test_cli_train_and_models(loop_settings: Settings, tmp_path: Path) -> None:
    env_settings = loop_settings
    tree = labelled_tree(tmp_path, 10)
    eyes(env_settings, "users", "create", "cli", "--admin", stdin="a long password\n")
    extra = ["--owner", "cli", "--tags-from-folders"]
    assert eyes(env_settings, "import", str(tree), *extra).returncode == 0
    res = eyes(env_settings, "train", "--wait", "--json", env={"EYES_MIN_OWNERS_PER_TAG": "1"})
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["version"] == "v1" and info["stage"] == "champion"
    listed = eyes(env_settings, "models", "list", "--json")
    assert json.loads(listed.stdout)["champion"] == "v1"
    back = eyes(env_settings, "models", "rollback")
    assert back.returncode == 0 and "imagenet" in back.stdout
    again = eyes(env_settings, "models", "promote", "v1")
    assert again.returncode == 0
    bad = eyes(env_settings, "models", "show", "v99")
    assert bad.returncode == 1 and "no model v99" in bad.stderr


def test_job_state_and_failure_reasons_are_for_administrators(loop_settings: Settings) -> None:
    with TestClient(create_app(loop_settings), base_url="http://127.0.0.1") as client:
        assert client.get("/api/v1/jobs").status_code == 401
        sign_up(client, "admin")  # the first account
        state = client.get("/api/v1/jobs").json()
        assert state["queue"] == "in-process"
        assert set(state["tagging"]) == {"pending", "done", "untaggable"} and state["training"] == []
        ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
        with transaction(ctx.sessions) as session:
            session.add(ModelVersion(stage=ModelStage.FAILED, reason="OSError: /srv/eyes/secret on host-7"))
        assert "host-7" in client.get("/api/v1/models/v1").text and "host-7" in client.get("/models").text
        assert 'id="jobs"' in client.get("/models").text

        client.cookies.clear()
        sign_up(client, "member")
        assert client.get("/api/v1/jobs").status_code == 403
        for seen in (client.get("/api/v1/models/v1"), client.get("/api/v1/models"), client.get("/models")):
            assert "host-7" not in seen.text and "an administrator can see why" in seen.text
        assert 'id="jobs"' not in client.get("/models").text


def test_evaluate_counts_a_photo_under_its_folder_tag_and_the_tags_above_it(
    ctx: Context, tmp_path: Path
) -> None:
    from eyes.services import vocabulary
    from eyes.services.classify import evaluate_tree

    vocabulary.set_parent(ctx, None, "leopards", "animal")
    vocabulary.set_parent(ctx, None, "watch", "object")
    vocabulary.set_parent(ctx, None, "airplanes", "object")
    import_tree(ctx, labelled_tree(tmp_path, 10), owner="owner", tags_from_folders=True, progress=False)
    version = training.start_run(ctx, None)
    assert stages(ctx)[version] == "champion"
    assert set(ctx.tagger.champion().vocabulary) == {"airplanes", "animal", "leopards", "object", "watch"}
    test = tmp_path / "test"
    for cls in CLASSES:
        (test / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[-4:]:
            (test / cls / src.name).symlink_to(src)
    result = evaluate_tree(ctx, test)
    assert result.report.accuracy >= 0.9
    assert result.tags["animal"]["support"] == 4 and result.tags["object"]["support"] == 8
    assert result.tags["object"]["recall"] >= 0.75, "a watch is shown as an object too"
