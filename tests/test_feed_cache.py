"""The anonymous feed's cache: fast, and never showing what was just changed here, nor for longer
than its setting what was changed by another process."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from eyes.context import build_context
from eyes.db.session import transaction
from eyes.services.feed_cache import FeedCache
from tests.conftest import CALTECH, context_of, sign_up, upload

WATCHES = sorted((CALTECH / "watch").iterdir())


def anonymous(client: TestClient) -> TestClient:
    """A visitor without an account, on the same server as `client`."""
    return TestClient(client.app, base_url="http://127.0.0.1")


def anonymous_feed(client: TestClient) -> list[str]:
    return [p["id"] for p in anonymous(client).get("/api/v1/photos").json()["items"]]


def test_a_page_is_read_once_then_kept_until_it_expires() -> None:
    now = [100.0]
    cache: FeedCache[int] = FeedCache(ttl_s=1.0, clock=lambda: now[0])
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        return len(reads)

    assert [cache.get_or_read("page", read) for _ in range(3)] == [1, 1, 1]
    now[0] += 1.5
    assert cache.get_or_read("page", read) == 2, "an expired page is read again"
    assert cache.get_or_read("other page", read) == 3, "each page has its own entry"


def test_a_commit_during_a_read_keeps_that_read_out_of_the_cache() -> None:
    cache: FeedCache[str] = FeedCache(ttl_s=60)
    reading, committed = threading.Event(), threading.Event()

    def slow_read() -> str:
        reading.set()
        committed.wait(5)
        return "read before the commit"

    reader = threading.Thread(target=cache.get_or_read, args=("page", slow_read))
    reader.start()
    reading.wait(5)
    cache._changed(None)  # what a commit does, while the read is under way
    committed.set()
    reader.join(5)
    assert cache.get_or_read("page", lambda: "read after") == "read after"


def test_with_ttl_zero_every_request_reads() -> None:
    cache: FeedCache[int] = FeedCache(ttl_s=0)
    values = iter(range(10))
    assert [cache.get_or_read("page", lambda: next(values)) for _ in range(3)] == [0, 1, 2]


def test_changes_made_through_the_server_show_at_once(client: TestClient) -> None:
    sign_up(client, "ann")
    first = upload(client, WATCHES[0])
    assert anonymous_feed(client) == [first["id"]]  # now kept
    second = upload(client, WATCHES[1])
    assert anonymous_feed(client) == [second["id"], first["id"]], "a new photo shows at once"
    assert client.patch(f"/api/v1/photos/{second['id']}", json={"visibility": "private"}).status_code == 200
    assert anonymous_feed(client) == [first["id"]], "a photo made private leaves the feed at once"
    assert client.post(f"/api/v1/photos/{first['id']}/tags", json={"name": "wristwatch"}).status_code < 300
    shown = anonymous(client).get("/api/v1/photos").json()["items"][0]["tags"]
    assert "wristwatch" in [t["name"] for t in shown], "a new tag shows at once"
    assert client.delete(f"/api/v1/photos/{first['id']}").status_code == 204
    assert anonymous_feed(client) == [], "a deleted photo leaves the feed at once"
    assert "/photos/" not in anonymous(client).get("/").text


def test_changes_made_by_another_process_show_within_the_setting(client: TestClient) -> None:
    sign_up(client, "bea")
    photo = upload(client, WATCHES[0])
    assert anonymous_feed(client) == [photo["id"]]
    elsewhere = build_context(context_of(client).settings, migrate=False)  # a second server, say
    try:
        with transaction(elsewhere.sessions) as session:
            from sqlalchemy import delete

            from eyes.db.models import Photo, PhotoTag

            session.execute(delete(PhotoTag))
            session.execute(delete(Photo))
    finally:
        elsewhere.close()
    ttl = context_of(client).settings.feed_cache_s
    deadline = time.monotonic() + ttl + 2
    while anonymous_feed(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert anonymous_feed(client) == [], f"gone within {ttl} s (and a little scheduling)"


def test_signed_in_viewers_are_never_served_the_anonymous_page(client: TestClient) -> None:
    sign_up(client, "cy")
    photo = upload(client, WATCHES[0])
    kept = anonymous(client).get("/api/v1/photos").json()["items"]
    assert kept[0]["original_filename"] is None, "a visitor is not shown the file's name"
    own = client.get("/api/v1/photos").json()["items"]
    assert own[0]["id"] == photo["id"] and own[0]["original_filename"] == WATCHES[0].name
