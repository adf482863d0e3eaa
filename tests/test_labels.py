"""Labels: 'no' is a label, tags within tags, private photos, whose votes count, vote bursts.

No network runs here: photos are stored but not tagged (no job queue), labels are read from the
database as a training run would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Photo, PhotoTag, User
from eyes.db.session import transaction
from eyes.domain import Account, TagSource, TagStatus, Visibility
from eyes.errors import BadRequest, TooManyRequests
from eyes.services import labels, vocabulary
from eyes.services.accounts import create_user
from eyes.services.labels import class_vocabulary, training_labels
from eyes.services.photos import PhotoDraft, upload_photo
from eyes.services.tags import tag_ids
from eyes.services.views import AccountView
from tests.conftest import DATASETS, sign_up

LONG_AGO = datetime.now(UTC) - timedelta(days=30)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings.model_copy(update={"min_labels_per_tag": 2, "min_owners_per_tag": 2}))
    yield context
    context.close()


def make_user(ctx: Context, name: str, *, admin: bool = False, established: bool = True) -> AccountView:
    if not admin:
        create_user(ctx, f"zz-first-{name}", "a long password")  # so `name` is no admin
    user = create_user(ctx, name, "a long password", admin=admin)
    if not established:
        return user
    with transaction(ctx.sessions) as session:
        session.execute(update(User).where(User.id == user.id).values(created_at=LONG_AGO))
    return replace(user, created_at=LONG_AGO)


_colour = [0]


def photo(ctx: Context, tmp_path: Path, owner: Account, *tags: str, private: bool = False) -> tuple[int, str]:
    """A new photo (distinct bytes each time) with the owner's tags; returns (public id, sha256)."""
    _colour[0] += 1
    path = tmp_path / f"p{_colour[0]}.png"
    Image.new("RGB", (40, 30), (_colour[0] % 256, _colour[0] // 256, 7)).save(path)
    visibility = Visibility.PRIVATE if private else Visibility.PUBLIC
    up = upload_photo(ctx, owner.id, path, PhotoDraft(path.name, visibility=visibility, tags=tags))
    with ctx.sessions() as session:
        row = session.get_one(Photo, up.photo_id)
        return row.public_id, row.sha256


def row_of(session: Session, key: str) -> Photo:
    return session.scalars(select(Photo).where(Photo.public_id == key)).one()


def suggest(ctx: Context, key: str, name: str) -> None:
    """What a model's suggestion looks like in the database."""
    with transaction(ctx.sessions) as session:
        tag_id = tag_ids(session, {name})[name]
        photo_id = row_of(session, key).id
        session.add(
            PhotoTag(photo_id=photo_id, tag_id=tag_id, source=TagSource.MODEL, status=TagStatus.SUGGESTED)
        )


def read_labels(ctx: Context) -> labels.Labels:
    with ctx.sessions() as session:
        return training_labels(session, ctx.settings)


def test_a_rejection_and_agreed_no_votes_are_negatives_and_undecided_is_neither(
    ctx: Context, tmp_path: Path
) -> None:
    owner = make_user(ctx, "owner")
    voters = [make_user(ctx, f"voter{i}") for i in range(3)]
    ctx.settings = ctx.settings.model_copy(update={"trust_min_agreements": 0})
    pid, sha = photo(ctx, tmp_path, owner, "beach")
    suggest(ctx, pid, "sunset")
    with transaction(ctx.sessions) as session:
        labels.vote(session, row_of(session, pid), owner, "sunset", agrees=False)  # owner says no
    for voter in voters:
        labels.cast_vote(ctx, pid, voter, "dog", agrees=False)
    found = read_labels(ctx)
    assert found.positives[sha] == {"beach"}
    assert found.negatives[sha] == {"sunset", "dog"}, "a rejection and three agreed 'no' votes"
    assert "forest" not in found.negatives[sha], "nobody decided on forest: no label at all"


def test_a_label_for_a_child_is_a_label_for_its_parent(ctx: Context, tmp_path: Path) -> None:
    owner = make_user(ctx, "owner")
    vocabulary.set_parent(ctx, None, "Granny-Smith", "apple")
    vocabulary.set_parent(ctx, None, "apple", "fruit")
    yes, yes_sha = photo(ctx, tmp_path, owner, "granny-smith")
    no, no_sha = photo(ctx, tmp_path, owner)
    suggest(ctx, no, "apple")
    from eyes.services.photos import remove_owner_tag

    remove_owner_tag(ctx, no, owner, "apple")  # "not an apple" is "not a granny-smith" either
    found = read_labels(ctx)
    assert found.positives[yes_sha] == {"granny-smith", "apple", "fruit"}
    assert found.negatives[no_sha] == {"apple", "granny-smith"}
    with pytest.raises(BadRequest, match="cycle"):
        vocabulary.set_parent(ctx, None, "fruit", "granny-smith")


def test_the_grocery_hierarchy_imports_from_its_csv(ctx: Context) -> None:
    text = (DATASETS / "grocery" / "classes.csv").read_text()
    n = vocabulary.import_hierarchy(ctx, None, text)
    with ctx.sessions() as session:
        tree = vocabulary.hierarchy(session)
    assert n > 81, "each fine class under its coarse class, each coarse class under its category"
    assert tree.ancestors("granny-smith") == ["apple", "fruit"]
    with pytest.raises(BadRequest, match="two parents"):
        vocabulary.import_hierarchy(ctx, None, "a,b\na,c\n")


def test_private_photos_teach_nothing_without_their_owners_consent(ctx: Context, tmp_path: Path) -> None:
    owner = make_user(ctx, "owner")
    _, public_sha = photo(ctx, tmp_path, owner, "cat")
    _, private_sha = photo(ctx, tmp_path, owner, "secret-place", private=True)
    found = read_labels(ctx)
    assert public_sha in found.positives and private_sha not in found.positives
    assert "secret-place" not in found.owners
    with transaction(ctx.sessions) as session:
        session.execute(update(User).where(User.id == owner.id).values(private_photos_teach=True))
    assert read_labels(ctx).positives[private_sha] == {"secret-place"}


def test_new_accounts_votes_weigh_nothing_until_they_have_a_record(ctx: Context, tmp_path: Path) -> None:
    owners = [make_user(ctx, f"owner{i}") for i in range(2)]
    fresh = [make_user(ctx, f"fresh{i}", established=False) for i in range(5)]
    target, target_sha = photo(ctx, tmp_path, owners[0])
    for voter in fresh:
        labels.cast_vote(ctx, target, voter, "made-up", agrees=True)
    assert "made-up" not in read_labels(ctx).positives.get(target_sha, set()), "five fresh accounts: nothing"

    # Old enough, and agreeing with established owners' own decisions five times: now they count.
    with transaction(ctx.sessions) as session:
        session.execute(update(User).where(User.id.in_([u.id for u in fresh])).values(created_at=LONG_AGO))
    assert "made-up" not in read_labels(ctx).positives.get(target_sha, set()), "age alone is no record"
    decided = [photo(ctx, tmp_path, owners[i % 2], "tree")[0] for i in range(5)]
    for voter in fresh[:3]:
        for pid in decided:
            labels.cast_vote(ctx, pid, voter, "tree", agrees=True)
    assert "made-up" in read_labels(ctx).positives[target_sha]


def test_agreeing_with_fresh_accounts_builds_no_record(ctx: Context, tmp_path: Path) -> None:
    """A ring of fake accounts confirming each other's photos gains no trust."""
    ring_owner = make_user(ctx, "ring-owner", established=False)
    ring = [make_user(ctx, f"ring{i}") for i in range(3)]  # even old accounts
    target, target_sha = photo(ctx, tmp_path, make_user(ctx, "victim"))
    for pid in [photo(ctx, tmp_path, ring_owner, "tree")[0] for _ in range(6)]:
        for voter in ring:
            labels.cast_vote(ctx, pid, voter, "tree", agrees=True)
    for voter in ring:
        labels.cast_vote(ctx, target, voter, "made-up", agrees=True)
    assert "made-up" not in read_labels(ctx).positives.get(target_sha, set())


def test_a_tag_nobody_approved_is_no_class(ctx: Context, tmp_path: Path) -> None:
    admin = make_user(ctx, "admin", admin=True)
    owners = [make_user(ctx, f"owner{i}") for i in range(2)]
    for i in range(4):
        photo(ctx, tmp_path, owners[i % 2], "invented")
        photo(ctx, tmp_path, admin if i < 2 else owners[i % 2], "cat")  # the admin's own tag: approved
    with ctx.sessions() as session:
        vocab = class_vocabulary(session, training_labels(session, ctx.settings), ctx.settings, set())
    assert vocab.classes == ["cat"] and vocab.waiting == ["invented"]
    with pytest.raises(BadRequest, match="wait for an administrator's approval"):
        labels.require_vocabulary(vocab, ctx.settings)
    with pytest.raises(Exception, match="administrator"):
        vocabulary.approve(ctx, owners[0], ["invented"])
    vocabulary.approve(ctx, admin, ["invented"])
    with ctx.sessions() as session:
        vocab = class_vocabulary(session, training_labels(session, ctx.settings), ctx.settings, set())
    assert vocab.classes == ["cat", "invented"] and vocab.waiting == []


def test_a_burst_of_votes_is_refused_with_retry_after(settings: Settings, tmp_path: Path) -> None:
    limited = settings.model_copy(update={"max_votes_per_minute": 5})
    with TestClient(create_app(limited), base_url="http://127.0.0.1") as client:
        sign_up(client, "owner")
        path = tmp_path / "one.png"
        Image.new("RGB", (40, 30), (1, 2, 3)).save(path)
        with open(path, "rb") as f:
            photo_id = client.post("/api/v1/photos", files={"file": ("one.png", f, "image/png")}).json()["id"]
        client.cookies.clear()
        sign_up(client, "eager")
        answers = [
            client.post(f"/api/v1/photos/{photo_id}/votes", json={"tag": f"t{i}", "agrees": True})
            for i in range(8)
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
        # When the oldest vote of the minute leaves the window: within the minute, however slow the run.
        assert 0 < int(answers[-1].headers["Retry-After"]) <= 60
        assert answers[-1].json()["error"]["code"] == "too_many_requests"
        tally = client.post(f"/api/v1/photos/{photo_id}/votes", json={"tag": "t0", "agrees": True})
        assert tally.status_code == 429, "changing a vote counts too"


def test_vote_rate_limit_is_per_account(ctx: Context, tmp_path: Path) -> None:
    ctx.settings = ctx.settings.model_copy(update={"max_votes_per_minute": 2})
    owner = make_user(ctx, "owner")
    pid, _ = photo(ctx, tmp_path, owner)
    first, second = make_user(ctx, "first"), make_user(ctx, "second")
    labels.cast_vote(ctx, pid, first, "a", True)
    labels.cast_vote(ctx, pid, first, "b", True)
    with pytest.raises(TooManyRequests):
        labels.cast_vote(ctx, pid, first, "c", True)
    labels.cast_vote(ctx, pid, second, "c", True)  # another account is not held back


def test_owners_opt_their_private_photos_in_from_the_api_and_the_settings_page(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        csrf = sign_up(client, "owner")
        assert client.get("/api/v1/me").json()["private_photos_teach"] is False
        assert client.patch("/api/v1/me", json={"private_photos_teach": True}).json()["private_photos_teach"]
        assert 'id="private-photos-teach" checked' in client.get("/settings").text
        client.post("/settings/teaching", data={"csrf_token": csrf}, follow_redirects=False)
        assert client.get("/api/v1/me").json()["private_photos_teach"] is False


def test_the_command_line_approves_and_nests_tags(settings: Settings, tmp_path: Path) -> None:
    from tests.test_cli import eyes

    csv = tmp_path / "tree.csv"
    csv.write_text("class,coarse_class\nGranny-Smith,Apple\nPink-Lady,Apple\n")
    imported = eyes(settings, "tags", "import-hierarchy", str(csv))
    assert imported.returncode == 0 and "2 tag(s) given a parent" in imported.stdout
    assert eyes(settings, "tags", "parent", "apple", "fruit").returncode == 0
    assert eyes(settings, "tags", "approve", "Apple", "pear").stdout.strip() == "approved: apple, pear"
    listed = json.loads(eyes(settings, "tags", "list", "--json").stdout)
    rows = {t["name"]: t for t in listed["tags"]}
    assert rows["granny-smith"]["parent"] == "apple" and rows["apple"]["parent"] == "fruit"
    assert rows["apple"]["approved"] and not rows["granny-smith"]["approved"]
    cycle = eyes(settings, "tags", "parent", "fruit", "granny-smith")
    assert cycle.returncode == 1 and "cycle" in cycle.stderr
    bad = eyes(settings, "tags", "import-hierarchy", str(tmp_path / "missing.csv"))
    assert bad.returncode == 2


def test_members_cannot_shape_the_vocabulary_and_hostile_input_is_refused(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        csrf = sign_up(client, "admin")  # the first account
        too_big = b"a,b\n" * (300 * 1024)  # 1.2 MB
        res = client.post(
            "/models/tags/hierarchy",
            files={"file": ("t.csv", too_big, "text/csv")},
            data={"csrf_token": csrf},
            headers={"Accept": "application/json"},
        )
        assert res.status_code == 400 and "at most" in res.json()["error"]["message"]
        hostile = client.post("/api/v1/tags/approve", json={"names": ["<script>x</script>/"]})
        assert hostile.status_code == 400 and "cannot contain" in hostile.json()["error"]["message"]
        assert client.post("/api/v1/tags/approve", json={"names": ["t"] * 501}).status_code == 422
        cycle = client.put("/api/v1/tags/a/parent", json={"parent": "a"})
        assert cycle.status_code == 400 and "cycle" in cycle.json()["error"]["message"]

        client.cookies.clear()
        csrf = sign_up(client, "member")
        assert client.post("/api/v1/tags/approve", json={"names": ["cat"]}).status_code == 403
        assert client.put("/api/v1/tags/cat/parent", json={"parent": "animal"}).status_code == 403
        assert client.get("/api/v1/tags").status_code == 403
        form = client.post(
            "/models/tags/approve",
            data={"names": "cat", "csrf_token": csrf},
            headers={"Accept": "application/json"},
        )
        assert form.status_code == 403
        assert client.get("/api/v1/vocabulary").json()["waiting"] == []


def test_answers_on_the_learn_page_share_the_vote_limit(ctx: Context, tmp_path: Path) -> None:
    from eyes.services import learn

    ctx.settings = ctx.settings.model_copy(update={"max_votes_per_minute": 3})
    owner, eager = make_user(ctx, "owner"), make_user(ctx, "eager")
    photos = [photo(ctx, tmp_path, owner)[0] for _ in range(5)]
    for pid in photos[:3]:
        learn.answer(ctx, eager, pid, "other", "cat")
    with pytest.raises(TooManyRequests):
        learn.answer(ctx, eager, photos[3], "other", "cat")
