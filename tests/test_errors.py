"""Errors rendered in one place (eyes/web/errors.py): JSON for the API, a page for people, and
never a database question on the server's event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import Context
from eyes.domain import Account
from eyes.services import moderation
from eyes.services.views import NoticePublic
from eyes.web.deps import ViewerDep
from tests.conftest import sign_up

HTML = {"Accept": "text/html"}
MISSING = "A" * 22  # a photo id as ids look, of no photo


def _on_an_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a worker thread of the pool: it has none
        return False
    return True


@pytest.fixture
def member(settings: Settings) -> Iterator[TestClient]:
    """A signed-in member of an app with routes that fail the ways no real route can on demand."""
    app = create_app(settings)

    def teapot(viewer: ViewerDep) -> None:
        raise HTTPException(418, "short and stout")

    def database_down(viewer: ViewerDep) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the server is restarting"))

    def broken(viewer: ViewerDep) -> None:
        raise RuntimeError("a bug")

    for route in (teapot, database_down, broken):
        app.add_api_route(f"/test/{route.__name__}", route)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        sign_up(client, "ned")
        yield client


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        (f"/photos/{MISSING}", 404, "no such photo"),  # a domain error (NotFound)
        (f"/photos/{MISSING}?reported=perhaps", 422, "reported"),  # a request FastAPI refuses
        ("/test/teapot", 418, "short and stout"),  # Starlette's HTTPException
        ("/test/database_down", 503, "database is unavailable"),
        ("/test/broken", 500, "something went wrong"),
    ],
)
def test_an_error_page_asks_the_database_off_the_event_loop(
    member: TestClient, monkeypatch: pytest.MonkeyPatch, url: str, status: int, words: str
) -> None:
    """The page shows the signed-in viewer's notices, a database query: made on the thread pool,
    it never stalls the event loop every other request of the server shares."""
    on_loop: list[bool] = []
    real = moderation.unread_notices

    def watched(ctx: Context, user: Account) -> list[NoticePublic]:
        on_loop.append(_on_an_event_loop())
        return real(ctx, user)

    monkeypatch.setattr(moderation, "unread_notices", watched)
    res = member.get(url, headers=HTML)
    assert res.status_code == status and "text/html" in res.headers["content-type"]
    assert words in res.text
    assert on_loop == [False], "asked once, on a worker thread"


def test_a_lost_database_is_a_503_that_says_to_try_again(
    member: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "eyes"):
        res = member.get("/test/database_down")
    assert "database unavailable: the server is restarting" in caplog.text, "the driver's message"
    assert "SELECT" not in caplog.text, "never the statement"
    assert res.status_code == 503
    assert res.json()["error"] == {
        "code": "database_unavailable",
        "message": "the database is unavailable right now; try again shortly",
    }
    assert "SELECT" not in res.text, "nothing of the statement in the answer"


def test_a_lost_database_is_a_page_that_says_so_even_without_the_viewers_notices(
    member: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database gone after the viewer was known: the page cannot ask for their notices
    either, and still says what happened (before, a bare 500 in JSON)."""

    def gone(ctx: Context, user: Account) -> list[NoticePublic]:
        raise OperationalError("SELECT notices", {}, ConnectionRefusedError("the server is restarting"))

    monkeypatch.setattr(moderation, "unread_notices", gone)
    res = member.get("/test/database_down", headers=HTML)
    assert res.status_code == 503 and "text/html" in res.headers["content-type"]
    assert "database is unavailable" in res.text and "SELECT" not in res.text
