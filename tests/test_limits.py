"""Abuse: bursts of sign-ins, sign-ups, wrong tokens, uploads and classify calls are 429 with
`Retry-After`; expensive work waits in bounded slots (503 past them); the storage quota holds;
counters in Redis are shared by servers; a real server stays under 1 GB through big uploads."""

from __future__ import annotations

import concurrent.futures
import io
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import build_context
from eyes.errors import Busy, TooManyRequests
from eyes.services.accounts import create_token, create_user
from eyes.services.limits import Limits, Slots
from tests.conftest import CALTECH, context_of, counts, csrf_of, free_port, sign_up, upload

LEOPARDS = sorted((CALTECH / "Leopards").iterdir())
PASSWORD = "correct horse"


@pytest.fixture
def make_client(settings: Settings) -> Iterator:  # type: ignore[type-arg]
    """`make_client(**settings)`: an app with these settings, and clients on it from any address."""
    stack: list[TestClient] = []
    apps: dict[str, object] = {}

    def make(address: str = "198.51.100.1", **overrides: object) -> TestClient:
        if "app" not in apps:
            apps["app"] = create_app(settings.model_copy(update=overrides))
        client = TestClient(apps["app"], base_url="http://127.0.0.1", client=(address, 40000))  # type: ignore[arg-type]
        if not stack:
            client.__enter__()  # the first runs the app's start (models, workers) and its stop
        stack.append(client)
        return client

    yield make
    stack[0].__exit__(None, None, None)


def try_login(client: TestClient, username: str, password: str) -> httpx.Response:
    client.cookies.clear()
    token = csrf_of(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )


def retry_after(res: httpx.Response) -> int:
    assert res.status_code == 429, res.text
    return int(res.headers["Retry-After"])


def test_a_password_guesser_is_stopped_and_the_owner_still_signs_in(make_client) -> None:  # type: ignore[no-untyped-def]
    """Policy: failures count per (name, address), tightly, and per name, loosely; both windows
    move, so nobody locks an account for good."""
    attacker = make_client(
        "203.0.113.7",
        signin_limit_per_ip="100/minute",
        signin_failures_per_name_and_ip="3/4 seconds",
        signin_failures_per_name="5/4 seconds",
    )
    owner, second = make_client("198.51.100.2"), make_client("192.0.2.9")
    sign_up(owner, "victim")
    started = time.monotonic()

    tries = [try_login(attacker, "victim", f"guess-{i}") for i in range(5)]
    assert [r.status_code for r in tries] == [401, 401, 401, 429, 429]
    assert 1 <= retry_after(tries[-1]) <= 4
    assert "too many failed sign-ins" in tries[-1].text, "the form says why, readably"
    assert try_login(attacker, "victim", PASSWORD).status_code == 429, "this address is held back"

    # The owner elsewhere is not locked out by one guesser...
    assert try_login(owner, "victim", PASSWORD).status_code == 303
    # ...but guessers on several addresses meet the per-name limit (5 failures in the window).
    assert [try_login(second, "victim", "nope-nope").status_code for _ in range(3)] == [401, 401, 429]
    assert time.monotonic() - started < 4, "the test ran within one window"
    refused = try_login(owner, "victim", PASSWORD)
    assert retry_after(refused) <= 4

    time.sleep(retry_after(try_login(attacker, "victim", PASSWORD)) + 0.2)  # as the answer says
    assert try_login(attacker, "victim", PASSWORD).status_code == 303, "the window moved on"
    assert try_login(owner, "victim", PASSWORD).status_code == 303


def test_sign_in_attempts_per_address_count_every_name(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client("203.0.113.8", signin_limit_per_ip="4/minute")
    statuses = [try_login(client, f"name{i}", "whatever-pw").status_code for i in range(5)]
    assert statuses == [401] * 4 + [429]
    assert 55 <= retry_after(try_login(client, "other", "whatever-pw")) <= 60
    assert try_login(make_client("198.51.100.3"), "other", "whatever-pw").status_code == 401


def test_a_burst_of_sign_ups_from_one_address_is_429(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client("203.0.113.9", signup_limit_per_ip="3/hour")
    for i in range(3):
        sign_up(client, f"member{i}")
        client.cookies.clear()
    token = csrf_of(client)
    res = client.post(
        "/signup",
        data={"username": "member3", "password": PASSWORD, "csrf_token": token},
        headers={"Accept": "text/html"},
    )
    assert res.status_code == 429 and int(res.headers["Retry-After"]) > 3000
    assert "too many sign-ups" in res.text and "<form" in res.text, "a readable page, the form again"
    sign_up(make_client("198.51.100.4"), "elsewhere")  # another address is not held back


def test_wrong_api_tokens_from_one_address_are_429(make_client) -> None:  # type: ignore[no-untyped-def]
    guesser = make_client("203.0.113.10", token_failures_per_ip="5/minute")
    codes = [
        guesser.get("/api/v1/me", headers={"Authorization": f"Bearer eyes_wrong{i}"}).status_code
        for i in range(7)
    ]
    assert codes == [401] * 5 + [429] * 2
    res = guesser.get("/api/v1/me", headers={"Authorization": "Bearer eyes_wrong"})
    assert res.json()["error"]["code"] == "too_many_requests" and int(res.headers["Retry-After"]) >= 1

    ctx = context_of(guesser)
    user = create_user(ctx, "holder", PASSWORD)
    _, secret = create_token(ctx, user, "cli")
    other = make_client("198.51.100.5")
    assert other.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_a_burst_of_uploads_is_429_and_stores_nothing(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(upload_limit_per_account="3/minute")
    sign_up(client, "uploader")
    for path in LEOPARDS[:3]:
        upload(client, path)
    before = counts(context_of(client))
    with open(LEOPARDS[3], "rb") as f:
        res = client.post("/api/v1/photos", files={"file": ("l.jpg", f, "image/jpeg")})
    assert res.status_code == 429 and 55 <= int(res.headers["Retry-After"]) <= 60
    assert res.json()["error"]["code"] == "too_many_requests"
    assert counts(context_of(client)) == before, "nothing stored"
    client.cookies.clear()
    sign_up(client, "someone-else")
    upload(client, LEOPARDS[3])  # the limit is per account


def test_a_burst_of_classify_calls_is_429_per_account_and_per_address(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(classify_limit_per_account="2/minute", classify_limit_per_ip="3/minute")
    photo = LEOPARDS[0].read_bytes()

    def classify() -> httpx.Response:
        return client.post("/api/v1/classify", files={"file": ("l.jpg", photo, "image/jpeg")})

    sign_up(client, "curious")
    assert [classify().status_code for _ in range(3)] == [200, 200, 429]
    client.cookies.clear()
    sign_up(client, "second-account")
    first, second = classify(), classify()
    assert first.status_code == 200, "the account limit is per account"
    assert second.status_code == 429 and "from your address" in second.json()["error"]["message"]


def test_votes_use_the_same_limiter(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_votes_per_minute=2)
    sign_up(client, "owner")
    photo = upload(client, LEOPARDS[0])
    client.cookies.clear()
    sign_up(client, "voter")
    votes = [
        client.post(f"/api/v1/photos/{photo['id']}/votes", json={"tag": f"t{i}", "agrees": True})
        for i in range(3)
    ]
    assert [v.status_code for v in votes] == [200, 200, 429]
    assert "votes from your account" in votes[-1].json()["error"]["message"]


def test_the_quota_refuses_an_upload_before_anything_is_stored(make_client) -> None:  # type: ignore[no-untyped-def]
    first, second = LEOPARDS[0], LEOPARDS[1]
    quota = first.stat().st_size + second.stat().st_size - 1
    client = make_client(storage_quota_bytes=quota)
    sign_up(client, "keeper")
    upload(client, first)
    me = client.get("/api/v1/me").json()
    assert me["storage_used_bytes"] == first.stat().st_size and me["storage_quota_bytes"] == quota
    assert "MB of originals of" in client.get("/settings").text

    before = counts(context_of(client))
    with open(second, "rb") as f:
        res = client.post("/api/v1/photos", files={"file": (second.name, f, "image/jpeg")})
    assert res.status_code == 413 and res.json()["error"]["code"] == "quota_exceeded"
    assert "delete some photos" in res.json()["error"]["message"]
    assert counts(context_of(client)) == before, "no row, no blob, no temporary file"
    assert upload(client, first)["id"], "your own duplicate costs nothing"
    client.cookies.clear()
    sign_up(client, "another")
    upload(client, second)  # the quota is per account


def test_no_quota_by_default(client: TestClient) -> None:
    sign_up(client, "free")
    upload(client, LEOPARDS[0])
    me = client.get("/api/v1/me").json()
    assert me["storage_quota_bytes"] is None and me["storage_used_bytes"] == LEOPARDS[0].stat().st_size


def test_slots_queue_a_burst_and_refuse_past_the_wait_and_the_queue() -> None:
    slots = Slots("things", capacity=10, wait_s=0.2, queue=1)
    entered = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with slots.hold(8):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    entered.wait(5)
    with slots.hold(2):  # fits beside it
        pass
    started = time.monotonic()
    with pytest.raises(Busy) as waited, slots.hold(5):
        pass
    assert time.monotonic() - started >= 0.2 and waited.value.retry_after >= 1

    # One may wait; a second waiter at the same time is refused at once.
    results: list[str] = []

    def waiter() -> None:
        with slots.hold(5):
            results.append("served")

    patient = threading.Thread(target=waiter)
    slots.wait_s = 5
    patient.start()
    time.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(Busy), slots.hold(1):
        pass
    assert time.monotonic() - started < 0.1, "refused without waiting"
    release.set()
    thread.join()
    patient.join()
    assert results == ["served"], "the queued one was served once the slot was free"


def test_a_sign_in_that_cannot_get_a_hashing_slot_is_503_with_retry_after(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_parallel_hashes=1, busy_wait_s=0.1)
    sign_up(client, "patient")
    hashing = context_of(client).limits.hashing
    with hashing.hold():
        res = try_login(client, "patient", PASSWORD)
    assert res.status_code == 503 and int(res.headers["Retry-After"]) >= 1
    assert "busy" in res.text
    assert try_login(client, "patient", PASSWORD).status_code == 303, "and it works once free"


def test_the_limiter_store_follows_the_settings(settings: Settings) -> None:
    assert settings.resolved_rate_limit_url == "memory://"
    broker = settings.model_copy(update={"broker_url": "redis://127.0.0.1:6379/3"})
    assert broker.resolved_rate_limit_url == "redis://127.0.0.1:6379/3"
    amqp = settings.model_copy(update={"broker_url": "amqp://guest@127.0.0.1//"})
    assert amqp.resolved_rate_limit_url == "memory://"
    with pytest.raises(ValueError, match="not a rate limit"):
        Settings(signin_limit_per_ip="often")


@pytest.mark.redis
def test_two_servers_share_their_counters_in_redis(settings: Settings) -> None:
    shared = settings.model_copy(
        update={
            "rate_limit_url": "redis://127.0.0.1:6379/0",
            "rate_limit_prefix": f"eyes-test-{uuid.uuid4().hex}",
        }
    )
    one, two = build_context(shared), build_context(shared)
    try:
        for limits in (one.limits, two.limits, one.limits):
            limits.hit("3/minute", "upload", "42", what="uploads")
        with pytest.raises(TooManyRequests, match="too many uploads") as refused:
            two.limits.hit("3/minute", "upload", "42", what="uploads")
        assert 55 <= refused.value.retry_after <= 60
        two.limits.hit("3/minute", "upload", "43", what="uploads")  # another account
        alone = Limits(settings)  # in memory: counts of its own
        alone.hit("3/minute", "upload", "42", what="uploads")
    finally:
        one.limits.storage.reset()
        one.close()
        two.close()


# A real server, measured from outside: the probes of issue 9.


def flat_png(side: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "PNG")
    return out.getvalue()


def rss_peak_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    now = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return peak / 1024, now / 1024


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """`eyes serve` on the test's data folder, with an account and its token."""
    ctx = build_context(settings)
    user = create_user(ctx, "heavy", PASSWORD)
    _, secret = create_token(ctx, user, "test")
    ctx.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYES_")}
    env.update(EYES_HOME=str(settings.home), EYES_PORT=str(port))
    if settings.database_url:
        env["EYES_DATABASE_URL"] = settings.database_url
    log = settings.home / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "eyes", "serve"], env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(log.read_text())
        time.sleep(0.3)
    yield process, base, secret
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_six_parallel_largest_uploads_keep_the_server_under_1_gb(server) -> None:  # type: ignore[no-untyped-def]
    process, base, secret = server
    side = 7000  # 49 megapixels: below the default limit of 60, about 160 KB as a flat PNG
    files = [flat_png(side, (10 * i, 200, 30)) for i in range(6)]
    assert all(len(f) < 400_000 for f in files)
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=120)
    with http:
        measure_big_uploads(process, http, files)


def measure_big_uploads(process: subprocess.Popen[bytes], http: httpx.Client, files: list[bytes]) -> None:
    before, _ = rss_peak_mb(process.pid)

    def send(data: bytes) -> int:
        return http.post("/api/v1/photos", files={"file": ("big.png", data, "image/png")}).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(send, files))
    assert statuses == [201] * 6, statuses
    # Their tagging decodes each again in the background: wait for it, then read the peak.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        photos = http.get("/api/v1/photos").json()["items"]
        if len(photos) == 6 and all(p["tagging"] != "pending" for p in photos):
            break
        time.sleep(0.5)
    peak, now = rss_peak_mb(process.pid)
    print(f"server RSS: {before:.0f} MB at start, peak {peak:.0f} MB, {now:.0f} MB after")
    assert peak < 1024, f"the server peaked at {peak:.0f} MB"
    assert now < before + 300, f"memory was not given back: {now:.0f} MB after, {before:.0f} MB before"


@pytest.mark.slow
def test_two_hundred_parallel_wrong_passwords_are_refused_and_the_server_answers(server) -> None:  # type: ignore[no-untyped-def]
    process, base, _ = server
    with httpx.Client(base_url=base, timeout=120) as http:
        page = http.get("/login")
        cookies = dict(http.cookies)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    def guess(i: int) -> int:
        with httpx.Client(base_url=base, cookies=cookies, timeout=120) as c:
            res = c.post("/login", data={"username": "heavy", "password": f"wrong-{i}", "csrf_token": csrf})
            return res.status_code

    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        burst = [pool.submit(guess, i) for i in range(200)]
        time.sleep(0.5)
        started = time.perf_counter()
        unrelated = httpx.get(base + "/api/v1/photos", timeout=30)
        unrelated_s = time.perf_counter() - started
        statuses = [f.result() for f in burst]
    peak, _ = rss_peak_mb(process.pid)
    tally = {code: statuses.count(code) for code in set(statuses)}
    print(f"statuses {tally}; unrelated GET {unrelated_s:.2f} s; peak RSS {peak:.0f} MB")
    assert set(statuses) <= {401, 429, 503}, tally
    assert tally.get(429, 0) >= 150 and tally.get(401, 0) <= 30, tally
    assert unrelated.status_code == 200 and unrelated_s < 2.0
    assert peak < 1024


@contextmanager
def image_line_held(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, waiting: int
) -> Iterator[list[concurrent.futures.Future[httpx.Response]]]:
    """Every image slot taken by a classification held until the block ends, and `waiting` more
    in a line of that length (full): yields their answers to come."""
    import eyes.web.api
    import eyes.web.deps
    from eyes.services.classify import classify_file

    release = threading.Event()

    def slow_classify(*args: object) -> object:
        release.wait(30)  # holds its core until the block ends
        return classify_file(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(eyes.web.api, "classify_file", slow_classify)
    monkeypatch.setattr(eyes.web.deps, "IMAGE_QUEUE", waiting)
    photo = LEOPARDS[0].read_bytes()
    held = (os.cpu_count() or 1) + waiting  # one per core, and a full line
    with concurrent.futures.ThreadPoolExecutor(held) as pool:
        in_line = [
            pool.submit(client.post, "/api/v1/classify", files={"file": ("l.jpg", photo, "image/jpeg")})
            for _ in range(held)
        ]
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                limiter = getattr(client.app.state, "image_work", None)  # type: ignore[attr-defined]
                if limiter is not None and limiter.statistics().tasks_waiting == waiting:
                    break
                time.sleep(0.05)
            yield in_line
        finally:
            release.set()


def test_a_burst_of_images_past_the_waiting_line_is_503_and_those_in_line_are_answered(
    make_client,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    client = make_client(classify_limit_per_account="1000/minute", classify_limit_per_ip="1000/minute")
    sign_up(client, "ida")
    photo = LEOPARDS[0].read_bytes()
    with image_line_held(client, monkeypatch, waiting=2) as in_line:
        refused = [
            client.post("/api/v1/classify", files={"file": ("l.jpg", photo, "image/jpeg")}) for _ in range(3)
        ]
    answered = [f.result(timeout=60) for f in in_line]
    assert [r.status_code for r in refused] == [503] * 3
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert refused[0].json()["error"]["code"] == "busy"
    assert [r.status_code for r in answered] == [200] * len(in_line)


def test_an_upload_with_a_bad_tag_is_its_400_even_when_the_image_line_is_full(
    make_client,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """What is wrong with the request is said before it waits for an image slot: under load a
    bad tag was answered "busy, try again", and trying again could never succeed."""
    client = make_client(classify_limit_per_account="1000/minute", classify_limit_per_ip="1000/minute")
    sign_up(client, "ida")
    photo = LEOPARDS[0].read_bytes()
    with image_line_held(client, monkeypatch, waiting=1):
        bad = client.post(
            "/api/v1/photos", files={"file": ("l.jpg", photo, "image/jpeg")}, data={"tags": "x" * 500}
        )
        good = client.post(
            "/api/v1/photos", files={"file": ("l.jpg", photo, "image/jpeg")}, data={"tags": "cat"}
        )
    assert bad.status_code == 400 and "tag" in bad.json()["error"]["message"], bad.text
    assert good.status_code == 503, "a good one is told to come back"
    assert client.get("/api/v1/photos?owner=ida").json()["items"] == [], "neither was stored"


def test_an_import_waits_for_decoding_memory_instead_of_leaving_files_out(
    settings: Settings, tmp_path: Path
) -> None:
    """While uploads hold all the memory for decoding, an import waits its turn: 'busy, try again'
    is an answer for a request, not a reason for a bulk import to leave a file out."""
    from eyes.services.importer import import_tree

    tree = tmp_path / "tree"
    tree.mkdir()
    for src in sorted((CALTECH / "watch").iterdir())[:3]:
        (tree / src.name).symlink_to(src)
    ctx = build_context(settings.model_copy(update={"busy_wait_s": 0.1}))
    try:
        create_user(ctx, "olga", "a-long-password")
        held, release = threading.Event(), threading.Event()

        def uploads_decoding() -> None:
            with ctx.limits.decoding.hold(ctx.limits.decoding.capacity):
                held.set()
                release.wait(10)

        holder = threading.Thread(target=uploads_decoding)
        holder.start()
        held.wait(5)
        threading.Timer(1.0, release.set).start()  # ten times the wait a request is given
        report = import_tree(ctx, tree, owner="olga", progress=False)
        holder.join()
    finally:
        ctx.close()
    assert (report.imported, report.rejected) == (3, [])
