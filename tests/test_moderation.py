"""Moderation: sensitive-content scores and blurring, reports, and what administrators do, with
the abuse cases (who may moderate, report floods, private photos, suspended accounts, and hidden
photos leaking nowhere). The fast tier scores with the stand-in model (tests/standin_sensitive.py):
a red photo is sensitive, a real photo is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import Image, Photo
from eyes.jobs.tasks import sweep
from eyes.services import labels
from eyes.services.image_store import original_key
from eyes.services.importer import import_tree
from tests.conftest import CALTECH, context_of, csrf_of, sign_up, upload, wait_for_tagging
from tests.standin_sensitive import red_image

PHOTOS = sorted((CALTECH / "sunflower").iterdir())[:3]


class People:
    """An administrator, an owner and another member, each signed in on their own client of one app."""

    def __init__(self, admin: TestClient) -> None:
        self.admin = admin
        sign_up(admin, "admin")
        self.owner = self._member("owner")
        self.other = self._member("other")
        self.visitor = TestClient(admin.app, base_url="http://127.0.0.1")

    def _member(self, name: str) -> TestClient:
        client = TestClient(self.admin.app, base_url="http://127.0.0.1")
        sign_up(client, name)
        return client


@pytest.fixture
def people(settings: Settings) -> Iterator[People]:
    settings = settings.model_copy(update={"report_limit_per_account": "4/minute"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as admin:
        yield People(admin)


def _tagged(people: People, path: Path, **fields: str) -> dict:
    photo = upload(people.owner, path, **fields)
    wait_for_tagging(people.owner)
    return dict(people.owner.get(f"/api/v1/photos/{photo['id']}").json())


def test_the_tagging_job_scores_each_upload_and_sensitive_ones_are_blurred_for_others(
    people: People, tmp_path: Path
) -> None:
    red = _tagged(people, red_image(tmp_path / "red.jpg"), title="red wall")
    plain = _tagged(people, PHOTOS[0], title="sunflower")
    assert red["sensitive_score"] > 0.9 and red["sensitive"]
    assert plain["sensitive_score"] < 0.1 and not plain["sensitive"]
    assert not red["blurred"], "never blurred for its owner"

    seen = people.other.get(f"/api/v1/photos/{red['id']}").json()
    assert seen["sensitive"] and seen["blurred"]
    assert seen["sensitive_score"] is None, "the score is the owner's and administrators' only"
    assert people.visitor.get(f"/api/v1/photos/{red['id']}").json()["blurred"]
    assert not people.other.get(f"/api/v1/photos/{plain['id']}").json()["blurred"]
    feed = people.visitor.get("/").text
    assert feed.count('class="card blurred"') == 1
    page = people.other.get(f"/photos/{red['id']}").text
    assert 'class="blurred" id="sensitive-figure"' in page and "Show sensitive photo" in page

    # Opting in (the API, or the settings page) shows them unblurred.
    assert people.other.patch("/api/v1/me", json={"show_sensitive": True}).json()["show_sensitive"]
    assert not people.other.get(f"/api/v1/photos/{red['id']}").json()["blurred"]
    assert 'id="show-sensitive" checked' in people.other.get("/settings").text
    people.other.post(
        "/settings/sensitive", data={"csrf_token": csrf_of(people.other)}, follow_redirects=False
    )
    assert people.other.get(f"/api/v1/photos/{red['id']}").json()["blurred"]


def test_an_upload_is_scored_from_the_decode_its_request_made(people: People, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ctx = context_of(people.owner)
    reads: list[str] = []
    real_open = ctx.blobs.open

    def counting_open(key: str):  # type: ignore[no-untyped-def]
        reads.append(key)
        return real_open(key)

    monkeypatch.setattr(ctx.blobs, "open", counting_open)
    photo = _tagged(people, PHOTOS[1])
    assert photo["sensitive_score"] is not None and photo["tags"], photo
    assert not [k for k in reads if k == original_key(photo_sha(ctx, photo["id"]))], (
        "neither tagging nor scoring reads the original again"
    )


def photo_sha(ctx, key: str) -> str:  # type: ignore[no-untyped-def]
    with ctx.sessions() as session:
        return str(session.scalar(select(Photo.sha256).where(Photo.public_id == key)))


def test_owners_mark_and_unmark_their_photo_and_nobody_else_can(people: People) -> None:
    photo = _tagged(people, PHOTOS[0])
    url = f"/api/v1/photos/{photo['id']}/sensitive"
    assert people.other.put(url, json={"marked": True}).status_code == 403
    assert people.visitor.put(url, json={"marked": True}).status_code == 401
    assert people.owner.put(url, json={"marked": "yes"}).status_code == 422
    marked = people.owner.put(url, json={"marked": True}).json()
    assert marked["marked_sensitive"] and marked["sensitive"]
    assert people.other.get(f"/api/v1/photos/{photo['id']}").json()["blurred"]
    # The page's form takes the mark off again.
    csrf = csrf_of(people.owner)
    people.owner.post(f"/photos/{photo['id']}/sensitive", data={"csrf_token": csrf}, follow_redirects=False)
    assert not people.other.get(f"/api/v1/photos/{photo['id']}").json()["sensitive"]


def test_photos_stored_before_scores_existed_are_scored_by_the_sweep(people: People) -> None:
    photo = _tagged(people, PHOTOS[1])
    ctx = context_of(people.admin)
    with ctx.sessions() as session, session.begin():
        session.execute(update(Image).values(sensitive_score=None))  # as an older Eyes left it
    sweep(ctx)
    wait_for_tagging(people.admin)
    with ctx.sessions() as session:
        scores = session.scalars(select(Image.sensitive_score)).all()
    assert scores and all(s is not None and s < 0.1 for s in scores)
    assert people.owner.get(f"/api/v1/photos/{photo['id']}").json()["sensitive_score"] is not None


def test_an_import_is_scored_in_the_background_and_blurred_for_others_until_then(
    people: People, tmp_path: Path
) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    red_image(folder / "red.jpg")
    (folder / "sunflower.jpg").write_bytes(PHOTOS[2].read_bytes())
    ctx = context_of(people.admin)
    jobs, ctx.jobs = ctx.jobs, None  # the background job held back, to see the photos before it
    try:
        report = import_tree(ctx, folder, owner="owner", progress=False)
    finally:
        ctx.jobs = jobs
    assert report.imported == 2
    with ctx.sessions() as session:
        assert session.scalars(select(Image.sensitive_score)).all() == [None, None], "not scored yet"
    listed = people.visitor.get("/api/v1/photos").json()["items"]
    assert len(listed) == 2 and all(p["blurred"] for p in listed), "unchecked: blurred for others"
    assert not any(p["blurred"] for p in people.owner.get("/api/v1/photos?owner=owner").json()["items"])
    assert all(p["tags"] for p in people.owner.get("/api/v1/photos?owner=owner").json()["items"]), "tagged"

    sweep(ctx)  # what the server's sweep does: the job scores what has no score
    wait_for_tagging(people.admin)
    shown = {p["title"] or p["id"]: p for p in people.visitor.get("/api/v1/photos").json()["items"]}
    assert sorted(p["blurred"] for p in shown.values()) == [False, True], "only the red one stays blurred"


def test_reporting_once_per_photo_with_a_reason_within_the_limit(people: People, tmp_path: Path) -> None:
    photos = [_tagged(people, p) for p in PHOTOS] + [_tagged(people, red_image(tmp_path / "r.jpg"))]
    first = f"/api/v1/photos/{photos[0]['id']}/reports"
    made = people.other.post(first, json={"reason": "spam", "note": "an advert"})
    assert made.status_code == 201, made.text
    assert made.json()["reason"] == "spam" and made.json()["reporter"] == "other"
    assert people.other.post(first, json={"reason": "spam"}).status_code == 409
    assert people.owner.post(first, json={"reason": "spam"}).status_code == 400, "not one's own photo"
    assert people.visitor.post(first, json={"reason": "spam"}).status_code == 401
    assert people.admin.post(first, json={"reason": "nonsense"}).status_code == 422
    assert people.admin.post(first, json={"reason": "spam", "note": "x" * 501}).status_code == 422
    # A burst is cut at the account's limit (4 a minute here: the two above counted).
    answers = [
        people.other.post(f"/api/v1/photos/{p['id']}/reports", json={"reason": "other"}).status_code
        for p in photos[1:]
    ]
    assert answers[:2] == [201, 201] and answers[2] == 429
    limited = people.other.post(f"/api/v1/photos/{photos[3]['id']}/reports", json={"reason": "other"})
    assert limited.status_code == 429 and "retry-after" in limited.headers


def test_a_private_photo_someone_cannot_see_cannot_be_reported(people: People) -> None:
    private = _tagged(people, PHOTOS[0], visibility="private")
    res = people.other.post(f"/api/v1/photos/{private['id']}/reports", json={"reason": "spam"})
    assert res.status_code == 404
    assert people.other.post(f"/api/v1/photos/{'A' * 22}/reports", json={"reason": "spam"}).status_code == 404
    assert people.other.post("/api/v1/photos/1/reports", json={"reason": "spam"}).status_code == 404
    form = people.other.post(
        f"/photos/{private['id']}/report", data={"reason": "spam", "csrf_token": csrf_of(people.other)}
    )
    assert form.status_code == 404


def test_only_administrators_moderate(people: People) -> None:
    photo = _tagged(people, PHOTOS[0])
    pid = photo["id"]
    calls = [
        ("get", "/api/v1/moderation/queue", None),
        ("get", "/api/v1/moderation/users/suspended", None),
        ("post", f"/api/v1/moderation/photos/{pid}/hide", {"reason": "x"}),
        ("post", f"/api/v1/moderation/photos/{pid}/restore", None),
        ("post", "/api/v1/moderation/users/owner/warn", {"message": "behave"}),
        ("post", "/api/v1/moderation/users/owner/suspend", None),
        ("post", "/api/v1/moderation/users/owner/unsuspend", None),
    ]
    for method, url, body in calls:
        assert getattr(people.other, method)(url, **({"json": body} if body else {})).status_code == 403, url
        assert getattr(people.visitor, method)(url, **({"json": body} if body else {})).status_code == 401, (
            url
        )
    assert people.other.get("/moderation").status_code == 403
    csrf = csrf_of(people.other)
    for form in (f"/moderation/photos/{pid}/hide", "/moderation/users/owner/suspend"):
        assert people.other.post(form, data={"csrf_token": csrf}).status_code == 403
    # Nothing happened.
    assert people.visitor.get(f"/api/v1/photos/{pid}").status_code == 200
    assert people.owner.get("/api/v1/me").status_code == 200


def _everywhere_for(client: TestClient, photo: dict) -> dict[str, bool]:
    """Where `client` finds the photo: feed, search, tag page, profile, API, media, learn."""
    pid, tag = photo["id"], photo["tags"][0]["name"]
    found = {
        "feed": pid in client.get("/").text,
        "api list": any(p["id"] == pid for p in client.get("/api/v1/photos").json()["items"]),
        "search": any(
            p["id"] == pid for p in client.get("/api/v1/photos", params={"tag": tag}).json()["items"]
        ),
        "search page": pid in client.get("/search", params={"q": tag}).text,
        "tag page": pid in client.get(f"/tags/{tag}").text,
        "profile": pid in client.get("/users/owner").text,
        "api": client.get(f"/api/v1/photos/{pid}").status_code == 200,
        "page": client.get(f"/photos/{pid}").status_code == 200,
        "thumbnail": client.get(photo["thumbnail_url"]).status_code == 200,
        "image": client.get(photo["image_url"]).status_code == 200,
    }
    return found


def test_a_hidden_photo_leaks_nowhere_and_comes_back_when_restored(people: People) -> None:
    photo = _tagged(people, PHOTOS[0], title="leopard", tags="spotted")
    assert all(_everywhere_for(people.other, photo).values())
    people.other.post(f"/api/v1/photos/{photo['id']}/reports", json={"reason": "copyright"})

    hidden = people.admin.post(f"/api/v1/moderation/photos/{photo['id']}/hide", json={"reason": "not yours"})
    assert hidden.status_code == 200 and hidden.json()["hidden"]
    for client in (people.other, people.visitor):
        leaks = {k for k, v in _everywhere_for(client, photo).items() if v}
        assert not leaks, f"the hidden photo is still found in: {leaks}"
        fresh = {
            k: v for k, v in _everywhere_for(client, hidden.json()).items() if k in ("thumbnail", "image")
        }
        assert not any(fresh.values()), "nor under its new media URLs"
    assert not any(p["id"] == photo["id"] for p in _learn(people.other))
    # The owner still sees it, marked, and is told why; administrators see it to judge it.
    mine = people.owner.get(f"/api/v1/photos/{photo['id']}").json()
    assert mine["hidden"] and "Hidden by moderation" in people.owner.get(f"/photos/{photo['id']}").text
    assert people.owner.get(hidden.json()["thumbnail_url"]).status_code == 200
    notices = people.owner.get("/api/v1/me/notices").json()
    assert len(notices) == 1 and "not yours" in notices[0]["message"]
    assert "not yours" in people.owner.get("/").text, "shown on every page"
    assert people.admin.get(f"/api/v1/photos/{photo['id']}").json()["hidden"]
    assert people.admin.get(hidden.json()["thumbnail_url"]).headers["cache-control"].startswith("private")
    assert photo["id"] not in people.admin.get("/").text, "not in the feed, for administrators either"
    # Its report is resolved: the queue is empty.
    assert people.admin.get("/api/v1/moderation/queue").json() == []

    restored = people.admin.post(f"/api/v1/moderation/photos/{photo['id']}/restore").json()
    assert not restored["hidden"]
    assert all(_everywhere_for(people.other, restored).values())


def _learn(client: TestClient) -> list[dict]:
    page = client.get("/learn").text
    return [{"id": part.split('"')[0]} for part in page.split('data-photo-id="')[1:]]


def test_a_hidden_photo_teaches_nothing(people: People) -> None:
    taught = _tagged(people, PHOTOS[0], tags="flower")
    hidden = _tagged(people, PHOTOS[1], tags="flower")
    ctx = context_of(people.admin)

    def shas() -> set[str]:
        with ctx.sessions() as session:
            return set(labels.training_labels(session, ctx.settings).positives)

    with ctx.sessions() as session:
        sha_of = {key: sha for key, sha in session.execute(select(Photo.public_id, Photo.sha256))}
    assert shas() == {sha_of[taught["id"]], sha_of[hidden["id"]]}
    people.admin.post(f"/api/v1/moderation/photos/{hidden['id']}/hide", json={})
    assert shas() == {sha_of[taught["id"]]}
    people.admin.post("/api/v1/moderation/users/owner/suspend")
    assert shas() == set(), "a suspended account's photos teach nothing either"


def test_a_suspended_account_cannot_sign_in_use_tokens_or_show_its_photos(people: People) -> None:
    photo = _tagged(people, PHOTOS[0], tags="flower")
    token = (
        people.owner.post("/settings/tokens", data={"name": "script", "csrf_token": csrf_of(people.owner)})
        .text.split('id="new-token">')[1]
        .split("<")[0]
    )
    bearer = {"Authorization": f"Bearer {token}"}
    assert people.visitor.get("/api/v1/me", headers=bearer).status_code == 200

    assert people.admin.post("/api/v1/moderation/users/owner/suspend").status_code == 204
    assert people.owner.get("/api/v1/me").status_code == 401, "the signed-in browser is signed out"
    assert people.visitor.get("/api/v1/me", headers=bearer).status_code == 401, "the token is dead"
    fresh = TestClient(people.admin.app, base_url="http://127.0.0.1")
    signin = fresh.post(
        "/login",
        data={"username": "owner", "password": "correct horse", "csrf_token": csrf_of(fresh)},
        follow_redirects=False,
    )
    assert signin.status_code == 403 and "suspended" in signin.text
    wrong = fresh.post(
        "/login", data={"username": "owner", "password": "wrong password", "csrf_token": csrf_of(fresh)}
    )
    assert wrong.status_code == 401 and "suspended" not in wrong.text, "no probing without the password"
    leaks = {k for k, v in _everywhere_for(people.other, photo).items() if v and k != "profile"}
    assert not leaks, f"a suspended account's photo is still found in: {leaks}"
    assert [u["username"] for u in people.admin.get("/api/v1/moderation/users/suspended").json()] == ["owner"]

    people.admin.post("/api/v1/moderation/users/owner/unsuspend")
    again = fresh.post(
        "/login",
        data={"username": "owner", "password": "correct horse", "csrf_token": csrf_of(fresh)},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert people.visitor.get("/api/v1/me", headers=bearer).status_code == 401, "old tokens stay dead"
    assert people.other.get(f"/api/v1/photos/{photo['id']}").status_code == 200


def test_a_suspended_accounts_albums_are_found_by_nobody_else_until_lifted(people: People) -> None:
    album = people.owner.post("/api/v1/albums", json={"title": "Abusive title"}).json()
    assert people.other.get(f"/api/v1/albums/{album['id']}").status_code == 200
    people.admin.post("/api/v1/moderation/users/owner/suspend")
    for viewer in (people.other, people.visitor, people.admin):
        assert viewer.get(f"/api/v1/albums/{album['id']}").status_code == 404
        assert viewer.get(f"/albums/{album['id']}").status_code == 404
        assert viewer.get("/api/v1/albums", params={"owner": "owner"}).json()["items"] == []
        assert "Abusive title" not in viewer.get("/users/owner/albums").text
    people.admin.post("/api/v1/moderation/users/owner/unsuspend")
    assert people.other.get(f"/api/v1/albums/{album['id']}").status_code == 200


def test_a_warning_names_only_a_photo_of_the_warned_user(people: People) -> None:
    theirs = _tagged(people, PHOTOS[0], visibility="private")
    res = people.admin.post(
        "/api/v1/moderation/users/other/warn", json={"message": "about this", "photo": theirs["id"]}
    )
    assert res.status_code == 400, res.text
    assert people.other.get("/api/v1/me/notices").json() == [], "no notice shows them someone else's photo"
    ok = people.admin.post(
        "/api/v1/moderation/users/owner/warn", json={"message": "yours", "photo": theirs["id"]}
    )
    assert ok.status_code == 204, ok.text


def test_administrators_cannot_be_suspended_nor_suspend_themselves(people: People) -> None:
    assert people.admin.post("/api/v1/moderation/users/admin/suspend").status_code == 400
    assert people.admin.post("/api/v1/moderation/users/nobody/suspend").status_code == 404
    assert people.admin.get("/api/v1/me").status_code == 200


def test_a_warning_is_seen_until_dismissed_and_only_by_its_user(people: People) -> None:
    res = people.admin.post("/api/v1/moderation/users/other/warn", json={"message": "Please tag kindly."})
    assert res.status_code == 204
    assert people.admin.post("/api/v1/moderation/users/other/warn", json={"message": ""}).status_code == 422
    notices = people.other.get("/api/v1/me/notices").json()
    assert [n["message"] for n in notices] == ["Please tag kindly."]
    assert "Please tag kindly." in people.other.get("/").text
    assert people.owner.get("/api/v1/me/notices").json() == []
    assert "Please tag kindly." not in people.owner.get("/").text
    notice_id = notices[0]["id"]
    assert people.owner.post(f"/api/v1/me/notices/{notice_id}/dismiss").status_code == 404
    assert people.other.post(f"/api/v1/me/notices/{2**31}/dismiss").status_code in (404, 422)
    assert people.other.post(f"/api/v1/me/notices/{notice_id}/dismiss").status_code == 204
    assert people.other.get("/api/v1/me/notices").json() == []


def test_the_queue_lists_reports_and_high_scores_until_reviewed(people: People, tmp_path: Path) -> None:
    red = _tagged(people, red_image(tmp_path / "red.jpg"))
    reported = _tagged(people, PHOTOS[0])
    _tagged(people, red_image(tmp_path / "private.jpg", seed=1), visibility="private")
    people.other.post(f"/api/v1/photos/{reported['id']}/reports", json={"reason": "violence", "note": "gore"})
    queue = people.admin.get("/api/v1/moderation/queue").json()
    assert [item["photo"]["id"] for item in queue] == [reported["id"], red["id"]], (
        "private photos are not queued"
    )
    assert queue[0]["reports"][0]["note"] == "gore" and queue[1]["photo"]["sensitive_score"] > 0.9
    page = people.admin.get("/moderation").text
    assert reported["id"] in page and red["id"] in page and "gore" in page

    people.admin.post(f"/api/v1/moderation/photos/{red['id']}/restore")  # "keep"
    people.admin.post(
        f"/moderation/photos/{reported['id']}/restore", data={"csrf_token": csrf_of(people.admin)}
    )
    assert people.admin.get("/api/v1/moderation/queue").json() == []
    assert "Nothing to review" in people.admin.get("/moderation").text
    assert people.other.get(f"/api/v1/photos/{red['id']}").json()["blurred"], "kept, still blurred"


def test_a_suspended_accounts_votes_teach_nothing(settings: Settings) -> None:
    trusting = settings.model_copy(
        update={"min_votes_to_agree": 2, "trust_min_agreements": 0, "trust_min_account_age_days": 0}
    )
    with TestClient(create_app(trusting), base_url="http://127.0.0.1") as admin:
        people = People(admin)
        vandal = people._member("vandal")
        photo = _tagged(people, PHOTOS[0])
        for voter in (people.other, vandal):
            res = voter.post(f"/api/v1/photos/{photo['id']}/votes", json={"tag": "teapot", "agrees": True})
            assert res.status_code == 200, res.text
        ctx = context_of(admin)

        def taught() -> set[str]:
            with ctx.sessions() as session:
                found = labels.training_labels(session, ctx.settings).positives
            return {name for names in found.values() for name in names}

        assert "teapot" in taught(), "two trusted votes agree"
        assert admin.post("/api/v1/moderation/users/vandal/suspend").status_code == 204
        assert "teapot" not in taught(), "one vote left: a suspended account's votes count no more"


def test_a_sensitive_album_cover_is_blurred_for_others_as_in_every_grid(
    people: People, tmp_path: Path
) -> None:
    red = _tagged(people, red_image(tmp_path / "red.jpg"), title="red wall")
    made = people.owner.post("/api/v1/albums", json={"title": "Walls", "photos": [red["id"]]})
    assert made.status_code == 201, made.text
    album = made.json()
    assert not album["cover_blurred"], "never blurred for its owner"
    for viewer in (people.other, people.visitor):
        seen = viewer.get(f"/api/v1/albums/{album['id']}").json()
        assert seen["cover_photo"] == red["id"] and seen["cover_blurred"]
        for page in ("/users/owner", "/users/owner/albums"):
            assert 'class="card album-card blurred"' in viewer.get(page).text, page
    people.other.patch("/api/v1/me", json={"show_sensitive": True})
    assert not people.other.get(f"/api/v1/albums/{album['id']}").json()["cover_blurred"], "opted in"
    assert 'class="card album-card"' in people.owner.get("/users/owner/albums").text
