"""Accounts: sign-up, log-in, log-out, CSRF, API tokens, administrators."""

from __future__ import annotations

import base64
import re

from fastapi.testclient import TestClient

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
