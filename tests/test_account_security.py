"""Accounts that end when they should, and a server no first visitor can claim.

The probes of issue 9: the first web sign-up became administrator; a session cookie replayed
after logout was still signed in for 14 days (and could make an API token); tokens never expired.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import ApiToken, LoginSession
from eyes.db.session import transaction
from eyes.errors import BadRequest
from eyes.services import invitations
from tests.conftest import context_of, csrf_of, sign_up
from tests.test_cli import eyes

SETUP_LINE = re.compile(r"/signup\?invite=([\w-]+)")


def _signup(client: TestClient, username: str, invite: str = "") -> int:
    """A sign-up form as a person fills it in; returns the status (303 when it worked)."""
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    data = {"username": username, "password": "correct horse", "csrf_token": csrf_of(client)}
    if invite:
        data["invite"] = invite
    res = client.post("/signup", data=data, follow_redirects=False)
    if res.status_code == 303:
        csrf_of(client)
    return res.status_code


def _me(client: TestClient) -> dict[str, object] | None:
    res = client.get("/api/v1/me")
    return res.json() if res.status_code == 200 else None


@pytest.fixture
def started(settings: Settings, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[TestClient, str]]:
    """A fresh server, and the setup code it printed at start."""
    with (
        caplog.at_level(logging.WARNING, logger="eyes"),
        TestClient(create_app(settings), base_url="http://127.0.0.1") as client,
    ):
        codes = SETUP_LINE.findall(caplog.text)
        assert len(codes) == 1, "a fresh server prints one setup link"
        yield client, codes[0]


# --- the first administrator ------------------------------------------------------------------


def test_the_first_visitor_is_not_an_administrator(started: tuple[TestClient, str]) -> None:
    client, _ = started
    assert _signup(client, "visitor") == 303
    assert _me(client) == {**(_me(client) or {}), "username": "visitor", "is_admin": False}
    assert client.post("/api/v1/models/train", json={}).status_code == 403


def test_the_setup_link_makes_an_administrator_once(started: tuple[TestClient, str]) -> None:
    client, code = started
    page = client.get(f"/signup?invite={code}")
    assert code in page.text, "the link fills the form in"
    assert _signup(client, "root", code) == 303
    assert (_me(client) or {})["is_admin"] is True
    assert _signup(client, "second", code) == 400, "used once"
    assert _me(client) is None


def test_a_restart_prints_a_new_code_until_there_is_an_administrator(
    settings: Settings, started: tuple[TestClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, old = started
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="eyes"), TestClient(create_app(settings)) as again:
        (new,) = SETUP_LINE.findall(caplog.text)
        assert _signup(again, "late", old) == 400, "only the newest code works"
        assert _signup(again, "root", new) == 303 and (_me(again) or {})["is_admin"] is True
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="eyes"), TestClient(create_app(settings)):
        assert not SETUP_LINE.findall(caplog.text), "no setup link once an administrator exists"


def test_the_cli_makes_the_first_administrator_and_invitations(settings: Settings) -> None:
    made = eyes(settings, "users", "create", "root", "--admin", stdin="a-long-password\n")
    assert made.returncode == 0, made.stderr
    res = eyes(settings, "users", "invite", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["path"] == f"/signup?invite={info['code']}" and info["admin"] is False
    with TestClient(create_app(settings.model_copy(update={"signup": "invite"}))) as client:
        assert _signup(client, "friend", info["code"]) == 303
        assert (_me(client) or {})["is_admin"] is False


# --- sign-up modes ----------------------------------------------------------------------------


def test_invite_mode_needs_an_invitation_and_each_works_once(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"signup": "invite"}))) as client:
        ctx = context_of(client)
        assert _signup(client, "stranger") == 403
        assert "invitation" in client.get("/signup").text
        code = invitations.create(ctx, None)
        assert _signup(client, "stranger", "not-a-code") == 400
        assert _signup(client, "friend", code) == 303
        assert _signup(client, "friend2", code) == 400, "used up"
        assert _me(client) is None


def test_closed_mode_refuses_everyone_but_an_administrators_invitation(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"signup": "closed"}))) as client:
        ctx = context_of(client)
        assert _signup(client, "stranger") == 403
        with pytest.raises(BadRequest, match="closed"):
            invitations.create(ctx, None)  # a member's invitation would not work: not made
        assert _signup(client, "root", invitations.create(ctx, None, admin=True)) == 303


def test_the_setup_link_dies_when_an_administrator_is_made_another_way(
    settings: Settings, started: tuple[TestClient, str]
) -> None:
    """Found by attacking it: the operator ran `eyes users create --admin` as the start message
    says, and the printed link still made a second administrator for whoever read the log."""
    client, code = started
    made = eyes(settings, "users", "create", "root", "--admin", stdin="a-long-password\n")
    assert made.returncode == 0, made.stderr
    assert _signup(client, "mallory", code) == 400
    assert _me(client) is None


def test_operator_invitations_are_listed_and_revocable(client: TestClient, settings: Settings) -> None:
    sign_up(client, "root")
    res = eyes(settings, "users", "invite", "--json")
    assert res.returncode == 0, res.stderr
    (listed,) = client.get("/api/v1/invitations").json()
    assert client.delete(f"/api/v1/invitations/{listed['id']}").status_code == 204
    assert _signup(client, "late", json.loads(res.stdout)["code"]) == 400


def test_a_cursor_past_any_id_on_a_page_is_a_clear_4xx(client: TestClient) -> None:
    for url in ("/?before=99999999999999999999999", "/tags/x?before=-99999999999999999999999"):
        res = client.get(url, headers={"Accept": "text/html"})
        assert 400 <= res.status_code < 500, (url, res.status_code)


def test_administrators_invite_from_the_api_members_cannot(client: TestClient) -> None:
    sign_up(client, "root")  # the test helper makes the first account with the setup code
    made = client.post("/api/v1/invitations", json={"admin": False})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["url"].endswith(f"/signup?invite={body['code']}") and body["admin"] is False
    listed = client.get("/api/v1/invitations").json()
    assert [i["id"] for i in listed] == [body["id"]] and "code" not in listed[0], "codes are shown once"
    assert _signup(client, "member", body["code"]) == 303
    assert client.post("/api/v1/invitations", json={"admin": True}).status_code == 403
    assert client.get("/api/v1/invitations").status_code == 403


# --- sessions that end ------------------------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_signed_out(client: TestClient) -> None:
    csrf = sign_up(client, "ann")
    stolen = dict(client.cookies)
    client.post("/logout", data={"csrf_token": csrf})
    thief = TestClient(client.app, base_url="http://127.0.0.1", cookies=stolen)
    assert thief.get("/api/v1/me").status_code == 401
    made = thief.post("/settings/tokens", data={"name": "x", "csrf_token": csrf}, follow_redirects=False)
    assert made.status_code in (303, 401, 403) and "new-token" not in made.text
    with context_of(client).sessions() as session:
        assert session.query(ApiToken).count() == 0 and session.query(LoginSession).count() == 0


def test_a_new_password_ends_the_other_sessions(client: TestClient) -> None:
    csrf = sign_up(client, "bea", "old password")
    laptop = TestClient(client.app, base_url="http://127.0.0.1")
    token = csrf_of(laptop)
    laptop.post("/login", data={"username": "bea", "password": "old password", "csrf_token": token})
    assert (_me(laptop) or {})["username"] == "bea"

    wrong = client.post(
        "/settings/password", data={"current": "not it at all", "new": "new password", "csrf_token": csrf}
    )
    assert wrong.status_code == 401 and _me(laptop) is not None, "a wrong current password changes nothing"
    res = client.post(
        "/settings/password",
        data={"current": "old password", "new": "new password", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert (_me(client) or {})["username"] == "bea", "this browser stays signed in"
    assert _me(laptop) is None, "the other one is signed out"
    token = csrf_of(laptop)
    old = laptop.post("/login", data={"username": "bea", "password": "old password", "csrf_token": token})
    assert old.status_code == 401


def test_sign_out_everywhere_and_one_by_one(client: TestClient) -> None:
    csrf = sign_up(client, "cy")
    phone = TestClient(client.app, base_url="http://127.0.0.1", headers={"User-Agent": "PhoneBrowser/1"})
    phone.post("/login", data={"username": "cy", "password": "correct horse", "csrf_token": csrf_of(phone)})
    page = client.get("/settings").text
    assert "PhoneBrowser/1" in page and "this browser" in page
    (phone_id,) = re.findall(r"/settings/sessions/(\d+)/end", page)
    client.post(f"/settings/sessions/{phone_id}/end", data={"csrf_token": csrf})
    assert _me(phone) is None and _me(client) is not None

    phone.post("/login", data={"username": "cy", "password": "correct horse", "csrf_token": csrf_of(phone)})
    client.post("/settings/sessions/end-all", data={"csrf_token": csrf})
    assert _me(phone) is None and _me(client) is None


def test_someone_elses_session_cannot_be_ended(client: TestClient) -> None:
    sign_up(client, "dee")
    with context_of(client).sessions() as session:
        (dees,) = session.query(LoginSession.id).all()
    csrf = sign_up(client, "eli")
    assert client.post(f"/settings/sessions/{dees[0]}/end", data={"csrf_token": csrf}).status_code == 404
    with context_of(client).sessions() as session:
        assert session.query(LoginSession).count() == 2


def test_sessions_expire(client: TestClient) -> None:
    sign_up(client, "fay")
    with transaction(context_of(client).sessions) as session:
        session.execute(update(LoginSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert _me(client) is None


# --- API tokens that expire -------------------------------------------------------------------


def test_api_tokens_expire(client: TestClient) -> None:
    csrf = sign_up(client, "gil")
    page = client.post("/settings/tokens", data={"name": "ci", "days": "30", "csrf_token": csrf}).text
    secret = re.search(r'id="new-token">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    assert re.search(r"expires \d{4}-\d\d-\d\d", page), "the page says when"
    api = TestClient(client.app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/v1/me").status_code == 200
    with transaction(context_of(client).sessions) as session:
        session.execute(update(ApiToken).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    gone = api.get("/api/v1/me")
    assert gone.status_code == 401 and "expired" in gone.json()["error"]["message"]


def test_a_token_lifetime_is_bounded(client: TestClient) -> None:
    csrf = sign_up(client, "hep")
    for days in ("-1", "100000", "soon", "0.00001", "nan", "inf"):
        res = client.post("/settings/tokens", data={"name": "x", "days": days, "csrf_token": csrf})
        assert res.status_code in (400, 422), days
    never = client.post("/settings/tokens", data={"name": "x", "days": "0", "csrf_token": csrf})
    assert never.status_code == 200 and "never expires" in never.text


def test_one_invitation_cannot_be_used_twice_at_once(settings: Settings) -> None:
    """Found by review: redeeming read the invitation, then marked it used; on SQLite two
    sign-ups with one code both read it unused, and an administrator's link made two."""
    import threading
    import time

    from eyes.context import build_context

    ctx = build_context(settings)
    code = invitations.create(ctx, None, admin=True)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def use() -> None:
        try:
            with transaction(ctx.sessions) as session:
                barrier.wait()
                invitations.redeem(session, code)
                time.sleep(0.3)  # the account's password hash runs here, in the same transaction
            results.append("used")
        except BadRequest:
            results.append("refused")

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx.close()
    assert sorted(results) == ["refused", "used"]
