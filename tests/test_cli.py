"""The `eyes` command: users and bulk import, as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from eyes.cli import main
from eyes.config import Settings
from eyes.context import build_context
from tests.conftest import CALTECH, counts


def eyes(
    settings: Settings, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `eyes ARGS` as a user would, on the test's data folder (plus any EYES_ variables): the
    same command, in this process through click's runner, so each costs no second interpreter's
    start (test_help_lists_the_commands runs the real `python -m eyes`)."""
    env = {**(env or {}), "EYES_HOME": str(settings.home)}
    if settings.database_url:
        env["EYES_DATABASE_URL"] = settings.database_url
    result = CliRunner().invoke(main, list(args), input=stdin, env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(["eyes", *args], result.exit_code, result.stdout, result.stderr)


def test_help_lists_the_commands() -> None:
    res = subprocess.run([sys.executable, "-m", "eyes", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for command in ("serve", "users", "import"):
        assert command in res.stdout


def test_users_create_admin_reads_password_from_stdin(settings: Settings) -> None:
    res = eyes(settings, "users", "create", "root", "--admin", stdin="a-long-password\n")
    assert res.returncode == 0, res.stderr
    assert "created administrator root" in res.stdout
    again = eyes(settings, "users", "create", "root", stdin="a-long-password\n")
    assert again.returncode == 1 and "taken" in again.stderr


def test_import_tags_from_folders_skips_duplicates_and_reports_rejects(
    settings: Settings, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    for cls in ("Leopards", "watch"):
        (tree / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[:3]:
            (tree / cls / src.name).symlink_to(src)
    (tree / "watch" / "notes.jpg").write_text("not an image at all")
    eyes(settings, "users", "create", "olga", stdin="a-long-password\n")

    first = eyes(settings, "import", str(tree), "--owner", "olga", "--tags-from-folders", "--json")
    assert first.returncode == 1, "a rejected file makes the exit code 1"
    report = json.loads(first.stdout)
    assert report["imported"] == 6 and report["existing"] == 0
    assert report["rejected"][0]["file"] == "watch/notes.jpg"
    assert "not an image" in report["rejected"][0]["reason"]
    assert "importing" in first.stderr, "a progress bar is shown"

    second = eyes(settings, "import", str(tree / "Leopards"), "--owner", "olga", "--json")
    assert second.returncode == 0
    assert json.loads(second.stdout) == {**json.loads(second.stdout), "imported": 0, "existing": 3}

    ctx = build_context(settings)
    try:
        assert counts(ctx)["photos"] == 6
        from eyes.services.photos import list_photos

        leopards = list_photos(ctx, None, tags=["leopards"]).items
        assert len(leopards) == 3
        assert all(t.status == "confirmed" for p in leopards for t in p.tags if t.name == "leopards")
    finally:
        ctx.close()


def test_import_stores_what_fits_the_quota_and_the_same_bytes_once(
    settings: Settings, tmp_path: Path
) -> None:
    """An import into an account near its quota stores the files that fit, in order, and names each
    of the rest with the quota's reason; a file with the bytes of another is that photo."""
    tree = tmp_path / "tree"
    tree.mkdir()
    sources = sorted((CALTECH / "watch").iterdir())[:4]
    for src in sources:
        (tree / src.name).symlink_to(src)
    (tree / "zz-copy.jpg").symlink_to(sources[0])  # after its original
    (tree / "zzz-notes.jpg").write_text("not an image at all")  # refused last, for another reason
    sizes = [src.stat().st_size for src in sources]
    quota = sizes[0] + sizes[1] + min(sizes[2:]) - 1  # room for two
    eyes(settings, "users", "create", "olga", stdin="a-long-password\n")

    res = eyes(
        settings,
        "import",
        str(tree),
        "--owner",
        "olga",
        "--json",
        env={"EYES_STORAGE_QUOTA_BYTES": str(quota)},
    )
    assert res.returncode == 1, "a refused file makes the exit code 1"
    report = json.loads(res.stdout)
    assert (report["imported"], report["existing"]) == (2, 1), report
    assert [r["file"] for r in report["rejected"]] == [sources[2].name, sources[3].name, "zzz-notes.jpg"]
    assert all("quota" in r["reason"] for r in report["rejected"][:2])
    ctx = build_context(settings)
    try:
        assert counts(ctx) == {"photos": 2, "images": 2, "blobs": 6, "tmp": 0}, "nothing kept of the refused"
    finally:
        ctx.close()


def test_import_without_accounts_says_how_to_make_one(settings: Settings) -> None:
    res = eyes(settings, "import", str(CALTECH / "watch"))
    assert res.returncode == 1
    assert "eyes users create" in res.stderr
