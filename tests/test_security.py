"""Safe on the internet: security headers on every response, /docs that needs no other host,
an API that answers out-of-range input with a 4xx, and the OpenAPI that tells the truth
(checked by schemathesis over every operation)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from eyes.app import create_app
from eyes.config import Settings
from eyes.services import accounts
from eyes.services import tags as tag_rules
from eyes.web.api import MAX_QUERY_TAGS
from tests.conftest import CALTECH, sign_up, upload

PHOTO = sorted((CALTECH / "Leopards").iterdir())[0]
TOO_BIG = 2**31  # one past the largest id an INTEGER column holds on PostgreSQL
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))  # more, and random, examples by hand


def csp(response: object) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    header = response.headers.get("content-security-policy", "")  # type: ignore[attr-defined]
    directives = (d.strip().split(" ", 1) for d in header.split(";") if d.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def assert_protected(response: object, *, hsts: bool = False) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    policy = csp(response)
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"  # type: ignore[attr-defined]
    assert policy.get("default-src") == "'self'", where
    assert policy.get("frame-ancestors") == "'none'", where
    assert "'unsafe-inline'" not in policy.get("script-src", "'self'"), where
    assert "'unsafe-eval'" not in policy.get("script-src", "'self'"), where
    assert "'unsafe-inline'" not in policy.get("style-src", "'self'"), where
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") in ("strict-origin-when-cross-origin", "same-origin"), where
    assert "camera=()" in headers.get("permissions-policy", ""), where
    assert ("strict-transport-security" in headers) is hsts, where
    assert len(headers.get_list("x-content-type-options")) == 1, f"{where}: one header, not two"


@pytest.fixture
def member(client: TestClient) -> TestClient:
    """An ordinary signed-in user (the first account is the administrator)."""
    sign_up(client, "admin")
    client.post("/logout", headers={"X-CSRF-Token": client.headers["X-CSRF-Token"]})
    client.cookies.clear()
    sign_up(client, "member")
    return client


@pytest.fixture
def photo(member: TestClient) -> dict[str, Any]:
    return upload(member, PHOTO, tags="leopard")


@pytest.fixture
def photo_id(photo: dict[str, Any]) -> str:
    return str(photo["id"])


# --- headers ---------------------------------------------------------------------------------


def test_every_kind_of_response_carries_the_security_headers(
    member: TestClient, photo: dict[str, Any], photo_id: str
) -> None:
    html = {"Accept": "text/html"}
    responses = [
        member.get("/", headers=html),  # a page
        member.get(f"/photos/{photo_id}", headers=html),
        member.get("/api/v1/photos"),  # the API
        member.get(f"/api/v1/photos/{photo_id}"),
        member.get(photo["thumbnail_url"]),  # media
        member.get(f"/photos/{photo_id}/original"),
        member.get("/static/eyes.css"),  # static files
        member.get("/openapi.json"),
        member.get("/healthz"),
        member.get("/api/v1/photos/999999"),  # errors, JSON and HTML
        member.get("/no/such/page", headers=html),
        member.post(
            f"/api/v1/photos/{photo_id}/tags", json={"name": "x"}, headers={"X-CSRF-Token": "forged"}
        ),
    ]
    assert [r.status_code for r in responses] == [200] * 9 + [404, 404, 403]
    for response in responses:
        assert_protected(response)


def test_a_server_error_is_json_and_carries_the_headers(settings: Settings) -> None:
    app = create_app(settings)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        res = client.get("/api/v1/broken")
    assert res.status_code == 500
    assert res.json()["error"]["code"] == "internal_error"
    assert "a bug" not in res.text, "no internals in the answer"
    assert_protected(res)


def test_hsts_only_when_cookies_are_https_only(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"secure_cookies": True}))) as client:
        res = client.get("/healthz")
    assert_protected(res, hsts=True)
    assert re.fullmatch(r"max-age=\d{7,}.*", res.headers["strict-transport-security"])


def test_pages_have_no_inline_script_or_style(member: TestClient, photo_id: str) -> None:
    """The policy forbids inline script: no template may rely on one (it would silently break)."""
    templates = Path(__file__).resolve().parents[1] / "eyes" / "web" / "templates"
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=|<style|\sstyle=", re.IGNORECASE)
    for template in sorted(templates.glob("*.html")):
        assert not inline.search(template.read_text()), f"{template.name} has inline script or style"
    page = member.get(f"/photos/{photo_id}", headers={"Accept": "text/html"})
    assert not inline.search(page.text)
    for src in re.findall(r'<script[^>]*src="([^"]+)"', page.text):
        assert src.startswith("/static/") and member.get(src).status_code == 200


# --- /docs offline ---------------------------------------------------------------------------


def test_docs_page_needs_no_other_host(client: TestClient) -> None:
    res = client.get("/docs")
    assert res.status_code == 200 and "text/html" in res.headers["content-type"]
    urls = re.findall(r'(?:src|href)="([^"]*)"', res.text)
    assert urls, "the page loads Swagger UI from somewhere"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is on another host"
    assert "cdn" not in res.text and "validator.swagger.io" not in res.text.replace(
        '"validatorUrl": null', ""
    )
    assert '"validatorUrl": null' in res.text, "Swagger UI would fetch a badge from swagger.io"
    kinds = {"js": "javascript", "css": "text/css"}
    served = {}
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        ext = url.rsplit(".", 1)[-1]
        if ext in kinds:
            assert kinds[ext] in asset.headers["content-type"], url
            served[ext] = len(asset.content)
    assert served.get("js", 0) > 500_000 and served.get("css", 0) > 50_000, "the real Swagger UI"
    assert client.get("/redoc").status_code == 404, "no ReDoc page that loads from a CDN"


def test_docs_page_policy_allows_only_its_own_inline_script(client: TestClient) -> None:
    res = client.get("/docs")
    assert_protected(res)
    script_src = csp(res)["script-src"].split()
    hashes = [s for s in script_src if s.startswith("'sha256-")]
    inline = re.findall(r"<script>(.*?)</script>", res.text, re.DOTALL)
    assert len(hashes) == len(inline) == 1, "one inline script (Swagger UI's start), allowed by its hash"
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert hashes == [f"'sha256-{digest}'"]


# --- robust API ------------------------------------------------------------------------------


BAD_IDS = ["1", str(TOO_BIG), str(2**63), "-1", "0", "9" * 30, "%C2%85{id}", "{id}_0", "{short}", "A" * 23]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_malformed_ids_are_404_json(member: TestClient, photo_id: str, bad_id: str) -> None:
    csrf = {"X-CSRF-Token": member.headers["X-CSRF-Token"]}
    bad_id = bad_id.format(id=photo_id, short=photo_id[:-1])  # "\x85" + an id was read as that id
    requests = [
        ("GET", f"/api/v1/photos/{bad_id}", None),
        ("PATCH", f"/api/v1/photos/{bad_id}", {"title": "x"}),
        ("DELETE", f"/api/v1/photos/{bad_id}", None),
        ("GET", f"/api/v1/photos/{bad_id}/tags", None),
        ("POST", f"/api/v1/photos/{bad_id}/tags", {"name": "x"}),
        ("DELETE", f"/api/v1/photos/{bad_id}/tags/x", None),
        ("POST", f"/api/v1/photos/{bad_id}/votes", {"tag": "x", "agrees": True}),
        ("GET", f"/media/{bad_id}/small.jpg", None),
        ("GET", f"/media/{bad_id}/large.jpg", None),
        ("GET", f"/photos/{bad_id}/original", None),
        ("GET", f"/photos/{bad_id}", None),
        ("POST", f"/settings/tokens/{bad_id}/revoke", None),
    ]
    for method, path, body in requests:
        res = member.request(method, path, json=body, headers=csrf)
        assert res.status_code == 404, f"{method} {path}: {res.status_code} {res.text[:200]}"
        assert res.json()["error"]["code"] in ("not_found", "http_error"), f"{method} {path}"


@pytest.mark.parametrize("bad_id", [str(TOO_BIG), str(2**63), "-1", "0", "x1", "%C2%851"])
def test_malformed_session_and_invitation_ids_are_404(member: TestClient, bad_id: str) -> None:
    csrf = {"X-CSRF-Token": member.headers["X-CSRF-Token"]}
    for method, path in (
        ("POST", f"/settings/sessions/{bad_id}/end"),
        ("DELETE", f"/api/v1/invitations/{bad_id}"),
    ):
        res = member.request(method, path, headers=csrf)
        assert res.status_code == 404, f"{method} {path}: {res.status_code} {res.text[:200]}"
    assert member.get("/api/v1/me").status_code == 200, "still signed in"


@pytest.mark.parametrize("bad_id", [TOO_BIG, 2**63])  # 2**63 was a 500 on SQLite too
def test_out_of_range_id_on_a_page_is_the_html_404(member: TestClient, bad_id: int) -> None:
    res = member.get(f"/photos/{bad_id}", headers={"Accept": "text/html"})
    assert res.status_code == 404 and "Not found" in res.text


def test_id_rules_are_in_the_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/photos/{photo_id}"]["get"]
    (param,) = [p for p in operation["parameters"] if p["name"] == "photo_id"]
    assert param["schema"]["pattern"] == "^[A-Za-z0-9_-]{22}$"


def test_too_many_tags_in_a_query_is_a_clear_400(
    member: TestClient, photo_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    query = "&".join(f"tag=t{i}" for i in range(1000))
    res = member.get(f"/api/v1/photos?{query}")
    assert res.status_code == 400
    assert f"at most {MAX_QUERY_TAGS}" in res.json()["error"]["message"]
    assert not any(len(r.getMessage()) > 2000 for r in caplog.records), "no huge SQL in the log"
    just_enough = "&".join(["tag=leopard"] * MAX_QUERY_TAGS)
    assert [p["id"] for p in member.get(f"/api/v1/photos?{just_enough}").json()["items"]] == [photo_id]


@pytest.mark.parametrize("cursor", [TOO_BIG, 2**63])
def test_a_cursor_past_the_largest_id_is_not_a_server_error(
    member: TestClient, photo_id: str, cursor: int
) -> None:
    res = member.get(f"/api/v1/photos?before={cursor}")
    assert res.status_code in (200, 400, 422), res.text
    assert res.headers["content-type"].startswith("application/json")


def test_timestamps_carry_their_zone(member: TestClient, photo_id: str) -> None:
    photo = member.get(f"/api/v1/photos/{photo_id}").json()
    me = member.get("/api/v1/me").json()
    for stamp in (photo["created_at"], me["created_at"]):
        assert stamp.endswith(("Z", "+00:00")), stamp
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - moment).total_seconds()) < 600, "UTC, not local time"


def test_openapi_documents_upload_answers_and_tag_rules(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    upload_op = spec["paths"]["/api/v1/photos"]["post"]
    assert {"200", "201"} <= set(upload_op["responses"])
    for code in ("200", "201"):
        schema = upload_op["responses"][code]["content"]["application/json"]["schema"]
        # The photo, with the uploader's own photos it nearly duplicates (services/similar.py).
        assert schema["$ref"].endswith("/PhotoUploaded"), code
    assert "near_duplicates" in spec["components"]["schemas"]["PhotoUploaded"]["properties"]
    assert "already" in upload_op["responses"]["200"]["description"]
    described = [
        spec["components"]["schemas"]["TagCreate"]["properties"]["name"]["description"],
        upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["tags"][
            "description"
        ],
    ]
    list_op = spec["paths"]["/api/v1/photos"]["get"]
    (tag_param,) = [p for p in list_op["parameters"] if p["name"] == "tag"]
    assert tag_param["schema"]["maxItems"] == MAX_QUERY_TAGS
    described.append(tag_param["description"])
    for text in described:
        assert "64" in text and "EYES_MAX_TAG_LENGTH" in text, text
        for ch in tag_rules._FORBIDDEN:
            assert ch in text, f"{ch!r} missing from: {text}"


@pytest.mark.parametrize("value", [0.0, 1, "yes", "true", None])
def test_consent_is_true_or_false_and_nothing_else(member: TestClient, value: object) -> None:
    """Found by schemathesis: `{"private_photos_teach": 0.0}` used to pass as false (1 as true)."""
    res = member.patch("/api/v1/me", json={"private_photos_teach": value})
    assert res.status_code == 422, res.text
    assert member.get("/api/v1/me").json()["private_photos_teach"] is False
    assert member.patch("/api/v1/me", json={"private_photos_teach": True}).json()["private_photos_teach"]


# --- the whole API, fuzzed -------------------------------------------------------------------


@pytest.fixture
def api_schema(settings: Settings) -> Iterator[OpenApiSchema]:
    """The app's own OpenAPI, called in-process, with a photo in it and an ordinary user's token."""
    # Room for every generated call: rate limits would answer most of them 429 (documented, but
    # then the input itself goes untested). tests/test_limits.py tests the limits.
    many = "100000/minute"
    app = create_app(
        settings.model_copy(
            update={
                "upload_limit_per_account": many,
                "classify_limit_per_account": many,
                "classify_limit_per_ip": many,
            }
        )
    )
    # Loading the schema starts the app (its lifespan: the tagger, the workers) for the whole run.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        ctx = app.state.ctx
        accounts.create_user(ctx, "admin", "correct horse", admin=True)
        user = accounts.create_user(ctx, "member", "correct horse")
        _, secret = accounts.create_token(ctx, user, "schemathesis")
        client = TestClient(app, headers={"Authorization": f"Bearer {secret}"})  # no second start
        upload(client, PHOTO, tags="leopard")
        schema.app_token = secret  # type: ignore[attr-defined]
        yield schema
    finally:
        # Stop the app; schemathesis keys started apps by id(), which a later app may reuse.
        schemathesis_asgi.shutdown_lifespans()


def fuzz(operation: APIOperation, mode: schemathesis.GenerationMode, headers: dict[str, str]) -> None:
    """Hypothesis drives schemathesis's cases for one operation; raises on the first failure."""
    # Every check but these: random bytes are a schema-valid `file` (binary) yet no image, and
    # refusing them (422) is right; a multipart field is text on the wire, so a number "mutated"
    # into one arrives as valid text ("1"), and accepting it is right too.
    excluded = [positive_data_acceptance]
    if "multipart/form-data" in str(operation.definition.raw.get("requestBody", "")):
        excluded.append(negative_data_rejection)

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=FUZZ_EXAMPLES or 10,
        derandomize=not FUZZ_EXAMPLES,  # repeatable in CI; FUZZ_EXAMPLES=500 explores
        deadline=None,  # the run as a whole is bounded; one slow call is not a failure
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    call()


@pytest.mark.slow
def test_the_api_answers_every_generated_request_within_its_schema(api_schema: OpenApiSchema) -> None:
    """Schemathesis over every operation, valid and invalid input, as an ordinary user: no 5xx, no
    status the OpenAPI does not list, no body that breaks its schema. Bounded and repeatable:
    10 derandomised examples an operation and mode (FUZZ_EXAMPLES=N explores further)."""
    headers = {"Authorization": f"Bearer {api_schema.app_token}"}  # type: ignore[attr-defined]
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, headers)
            except hypothesis.errors.Unsatisfiable:
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
                # nothing in this operation can be invalid (no parameters, no body)
            except (Exception, FailureGroup) as exc:  # every operation's failure, not only the first
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
