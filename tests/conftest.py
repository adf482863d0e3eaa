"""Shared fixtures: every test builds its own Eyes on its own temporary data folder."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2 import profiles as argon2_profiles
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from eyes.app import create_app
from eyes.config import Settings, get_settings
from eyes.context import Context
from eyes.db.migrate import upgrade
from eyes.db.models import Image, Photo, User
from eyes.db.session import make_engine
from eyes.services import accounts, invitations
from tests.standin_backbone import write_standin_backbone
from tests.standin_sensitive import write_standin_sensitive

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (ROOT / ".." / "shared" / "datasets").resolve()
CALTECH = DATASETS / "caltech101-23"
IMAGENETTE = DATASETS / "imagenette10-600"
# A `torch` that refuses to load: first on the path in the fast tier (pytest_configure).
NO_TORCH = Path(__file__).resolve().parent / "no_torch"

# Settings under which the first few labels already teach: a class from 3 photos of one owner,
# every voter trusted, a run after each label. For tests of the training loop's machinery.
LEARN_AT_ONCE = {
    "min_labels_per_tag": 3,
    "min_owners_per_tag": 1,
    "auto_train_after": 0,
    "trust_min_account_age_days": 0,
    "trust_min_agreements": 0,
}


def free_port() -> int:
    """A TCP port free on loopback, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_tier(config: pytest.Config) -> bool:
    """True when the run leaves the slow tests out (`make test-fast`): then nothing may import
    torch, here or in a child process, and every app runs on the stand-in backbone."""
    return "not slow" in (config.option.markexpr or "")


def pytest_configure(config: pytest.Config) -> None:
    if fast_tier(config):
        # A `torch` that refuses to load stands first on the path, here and in child processes (a
        # command-line run, an export a test triggers): the test that reaches for it fails at once.
        sys.path.insert(0, str(NO_TORCH))
        path = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(NO_TORCH), path) if p)


@pytest.fixture(autouse=True)
def torch_stays_out_of_the_fast_tier(request: pytest.FixtureRequest) -> Iterator[None]:
    """The guarantee itself, after each test (in each worker of `make test-fast`): also an import
    made before the refusal was in place, or one that got past it."""
    yield
    if fast_tier(request.config):
        assert "torch" not in sys.modules, "the fast tier imported torch"


@pytest.fixture(scope="session")
def real_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pretrained backbone exported once per test session (torch), for the slow tier."""
    from eyes.ml.export import export_backbone

    dest = tmp_path_factory.mktemp("models")
    export_backbone(dest)
    return dest


@pytest.fixture(scope="session")
def standin_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in backbone (tests/standin_backbone.py): same files and interface, no torch."""
    dest = tmp_path_factory.mktemp("standin-models")
    write_standin_backbone(dest)
    return dest


@pytest.fixture(scope="session")
def standin_sensitive_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in sensitive-content model (tests/standin_sensitive.py): open_nsfw's interface."""
    return write_standin_sensitive(tmp_path_factory.mktemp("standin-sensitive"))


@pytest.fixture
def sensitive_model(request: pytest.FixtureRequest) -> str:
    """EYES_SENSITIVE_MODEL for this test: the bundled open_nsfw for a test marked slow (empty),
    the stand-in for every other."""
    if request.node.get_closest_marker("slow") is not None:
        return ""
    return str(request.getfixturevalue("standin_sensitive_model"))


@pytest.fixture
def models_dir(request: pytest.FixtureRequest) -> Path:
    """The models every app of this test shares read-only: the real network for a test marked
    slow, the stand-in backbone for every other."""
    slow = request.node.get_closest_marker("slow") is not None
    return Path(request.getfixturevalue("real_models_dir" if slow else "standin_models_dir"))


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at argon2-cffi's own profile for tests: the suite signs up hundreds of accounts, and
    a real hash (about 0.1 s of CPU each) would be a third of the fast tier. Servers a test starts
    in a child process keep the real cost (tests/test_limits.py measures it there)."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(argon2_profiles.CHEAPEST))


@contextmanager
def _postgres_database(server: str, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database of its own (a copy of `template`, else empty), dropped afterwards."""
    name = f"eyes_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        )
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url() -> Iterator[str]:
    """Empty (SQLite in the data folder), or a fresh PostgreSQL database for this test when
    EYES_TEST_DATABASE_URL names a server: `make test` runs the suite both ways."""
    server = os.environ.get("EYES_TEST_DATABASE_URL", "")
    if not server:
        yield ""
        return
    with _postgres_database(server) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """With EYES_TEST_DATABASE_URL: the name of a PostgreSQL database at the newest schema, made
    once, that each test's database is copied from (CREATE DATABASE ... TEMPLATE: 0.1 s where
    migrating an empty one costs 0.5 s). Empty string without a server."""
    server = os.environ.get("EYES_TEST_DATABASE_URL", "")
    if not server:
        yield ""
        return
    with _postgres_database(server) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()  # a template must have no connections when it is copied
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def migrated_database_url(migrated_postgres: str) -> Iterator[str]:
    """Like `database_url`, but at the newest schema already (every app still runs the migrations
    at start, and finds nothing to do)."""
    server = os.environ.get("EYES_TEST_DATABASE_URL", "")
    if not server:
        yield ""
        return
    with _postgres_database(server, template=migrated_postgres) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest schema, made once: each test starts from a copy
    (every app still runs the migrations at start, and finds nothing to do; migrating from
    nothing costs 0.1 s a test, and tests/test_migrations.py tests that)."""
    path = tmp_path_factory.mktemp("schema") / "eyes.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection out folds the write-ahead log into the file
    return path


@pytest.fixture
def settings(
    tmp_path: Path,
    models_dir: Path,
    migrated_database_url: str,
    migrated_sqlite: Path,
    sensitive_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    for key in list(os.environ):
        if key.startswith("EYES_") and key != "EYES_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    settings = get_settings(
        home=home, sweep_interval_s=0.5, database_url=migrated_database_url, sensitive_model=sensitive_model
    )
    if not migrated_database_url:
        shutil.copyfile(migrated_sqlite, settings.resolved_database_url.removeprefix("sqlite:///"))
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        yield c


def context_of(client: TestClient) -> Context:
    ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def csrf_of(client: TestClient) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, "every page carries the CSRF token"
    client.headers["X-CSRF-Token"] = match.group(1)  # what the pages' JavaScript sends
    return match.group(1)


def sign_up(client: TestClient, username: str, password: str = "correct horse") -> str:
    """Sign `client` up (and in); returns the CSRF token for its later requests. The platform's
    first account uses an administrator's invitation, as its operator does with the setup link
    printed at start (tests/test_account_security.py tests that link itself)."""
    client.headers.pop("X-CSRF-Token", None)
    token = csrf_of(client)
    data = {"username": username, "password": password, "csrf_token": token}
    ctx = context_of(client)
    with ctx.sessions() as session:
        if not session.scalar(select(func.count(User.id))):
            data["invite"] = invitations.create(ctx, None, admin=True)
    res = client.post("/signup", data=data, follow_redirects=False)
    assert res.status_code == 303, res.text
    return csrf_of(client)


def upload(client: TestClient, path: Path, **fields: str) -> dict:
    with open(path, "rb") as f:
        res = client.post("/api/v1/photos", files={"file": (path.name, f, "image/jpeg")}, data=fields)
    assert res.status_code in (200, 201), res.text
    return res.json()


def wait_for_tagging(client: TestClient, timeout: float = 60) -> None:
    queue = context_of(client).jobs
    queue.wait_idle(timeout)  # type: ignore[union-attr]


def counts(ctx: Context) -> dict[str, int]:
    """How many photos, images and blob files exist: what 'nothing left behind' checks."""
    with ctx.sessions() as session:
        photos = session.scalar(select(func.count(Photo.id))) or 0
        images = session.scalar(select(func.count(Image.sha256))) or 0
    blobs = len([k for k in ctx.blobs.keys("") if not k.startswith("models/")])
    tmp = ctx.settings.home / "tmp"
    leftovers = len(list(tmp.iterdir())) if tmp.exists() else 0
    return {"photos": photos, "images": images, "blobs": blobs, "tmp": leftovers}
