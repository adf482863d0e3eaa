"""Accounts: sign-up, log-in, log-out, CSRF, API tokens, administrators."""

from __future__ import annotations

import base64
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect as orm_state

from eyes.config import Settings
from eyes.context import build_context
from eyes.services import accounts, sessions
from tests.conftest import csrf_of, sign_up


def test_session_cookie_is_httponly_and_samesite_lax(client: TestClient) -> None:
    token = csrf_of(client)
    res = client.post(
        "/signup",
        data={"username": "carol", "password": "long enough", "csrf_token": token},
        follow_redirects=False,
    )
    cookie = res.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "long enough" not in cookie


def test_login_wrong_password_then_right_then_logout(client: TestClient) -> None:
    sign_up(client, "dave", "s3cret-pass")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert client.get("/api/v1/me").status_code == 401

    token = csrf_of(client)
    bad = client.post("/login", data={"username": "dave", "password": "nope-nope", "csrf_token": token})
    assert bad.status_code == 401 and "wrong username or password" in bad.text
    ok = client.post(
        "/login",
        data={"username": "DAVE", "password": "s3cret-pass", "csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert client.get("/api/v1/me").json()["username"] == "dave"


def test_form_post_without_csrf_token_is_refused(client: TestClient) -> None:
    csrf_of(client)
    del client.headers["X-CSRF-Token"]  # a plain form post from another site: no header either
    res = client.post("/signup", data={"username": "eve", "password": "whatever1"})
    assert res.status_code == 403
    assert "security token" in res.text
    wrong = client.post("/signup", data={"username": "eve", "password": "whatever1", "csrf_token": "forged"})
    assert wrong.status_code == 403


def test_cookie_api_call_without_csrf_header_is_refused(client: TestClient) -> None:
    sign_up(client, "frank")
    del client.headers["X-CSRF-Token"]
    res = client.post("/api/v1/photos", files={"file": ("a.jpg", b"xx", "image/jpeg")})
    assert res.status_code == 403
    assert res.json()["error"]["code"] == "forbidden"


def test_duplicate_username_and_short_password_are_clear_errors(client: TestClient) -> None:
    sign_up(client, "gina")
    client.cookies.clear()
    token = csrf_of(client)
    taken = client.post("/signup", data={"username": "gina", "password": "another-pw", "csrf_token": token})
    assert taken.status_code == 409 and "taken" in taken.text
    short = client.post("/signup", data={"username": "hank", "password": "short", "csrf_token": token})
    assert short.status_code == 400 and "at least 8" in short.text


def test_api_token_create_use_revoke(client: TestClient) -> None:
    token = sign_up(client, "ivan")
    made = client.post(
        "/settings/tokens", data={"name": "script", "csrf_token": token}, follow_redirects=False
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    page = made.text
    secret = re.search(r'id="new-token">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    assert "new-token" not in client.get("/settings").text, "the secret is shown once"
    # The session cookie is signed, not encrypted: the secret must never travel in it.
    cookie = client.cookies["eyes_session"]
    payload = base64.b64decode(cookie.split(".")[0] + "==")
    assert secret.encode() not in payload and b"new_token" not in payload

    api = TestClient(client.app, base_url="http://127.0.0.1")
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == "ivan"

    token_id = re.search(r"/settings/tokens/(\d+)/revoke", page).group(1)  # type: ignore[union-attr]
    client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": token})
    gone = api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401 and "revoked" in gone.json()["error"]["message"]


def test_pages_that_need_an_account_redirect_to_login(client: TestClient) -> None:
    res = client.get("/upload", headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/login?next=/upload"


def assert_a_frozen_copy(thing: object) -> None:
    """Not a row of the database (SQLAlchemy knows nothing of it), and nothing can be written to it."""
    assert orm_state(thing, raiseerr=False) is None, f"{type(thing).__name__} is a database row"
    with pytest.raises((AttributeError, ValueError)):  # a frozen dataclass; a frozen pydantic model
        thing.id = 0  # type: ignore[attr-defined]
    assert not hasattr(thing, "password_hash")


def test_the_services_hand_out_frozen_copies_of_an_account_never_its_row(settings: Settings) -> None:
    """Who signed up or in, whose cookie or token a request carries: the web layer and its templates
    get a copy, made inside the service's own session. A row would outlive its session there:
    a lazy load would fail or query from a template, a write would be lost, the hash go along."""
    ctx = build_context(settings)
    try:
        signed_up = accounts.sign_up(ctx, "ada", "correct horse", "203.0.113.1")
        signed_in = accounts.sign_in(ctx, "ada", "correct horse", "203.0.113.1")
        by_cookie = sessions.user_for(ctx, sessions.start(ctx, signed_in))
        token, secret = accounts.create_token(ctx, signed_in, "script")
        by_token = accounts.user_for_token(ctx, secret)
        updated = accounts.update_preferences(ctx, signed_in, show_sensitive=True)
        made = accounts.create_user(ctx, "bob", "correct horse", admin=True)
        by_name = accounts.get_user_by_name(ctx, "Bob")
    finally:
        ctx.close()
    for thing in (signed_up, signed_in, by_cookie, by_token, updated, made, by_name, token):
        assert_a_frozen_copy(thing)
    assert signed_up == signed_in == by_cookie == by_token, "the same account, the same values"
    assert updated.show_sensitive and not signed_in.show_sensitive
    assert (made.username, made.is_admin) == ("bob", True) and token.name == "script"
    assert by_name == made, "looked up by name (the CLI's --owner), the same account"


@pytest.mark.parametrize("how", ["sign_up", "create_user"])
def test_a_new_password_is_hashed_before_the_transaction_opens(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A hash takes 64 MiB and waits for its slot: inside the transaction it held SQLite's one
    write lock (everybody's votes, uploads and sign-ins) or a PostgreSQL connection meanwhile."""
    events: list[str] = []
    real_transaction, real_hasher = accounts.transaction, accounts._hasher

    def transaction(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        events.append("transaction")
        return real_transaction(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(accounts, "transaction", transaction)

    class Hasher:  # the real one, watched
        def hash(self, password: str) -> str:
            events.append("hash")
            return real_hasher.hash(password)

    monkeypatch.setattr(accounts, "_hasher", Hasher())
    ctx = build_context(settings)
    try:
        if how == "sign_up":
            accounts.sign_up(ctx, "ada", "correct horse", "203.0.113.1")
        else:
            accounts.create_user(ctx, "ada", "correct horse")
    finally:
        ctx.close()
    assert events[:2] == ["hash", "transaction"], events
