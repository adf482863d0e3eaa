"""The `eyes` command. Exit codes: 0 success, 1 the work failed (in part), 2 usage error."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eyes.config import Settings, get_settings
from eyes.domain import License, Visibility, version_name
from eyes.errors import EyesError

if TYPE_CHECKING:
    from eyes.context import Context

VISIBILITIES = click.Choice([v.value for v in Visibility])  # what `Visibility.parse` takes


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic explains which setting is wrong
        raise click.ClickException(f"invalid settings: {exc}") from None


@contextmanager
def _context(*, run_jobs_here: bool = False) -> Iterator[Context]:
    """The parts of Eyes for one command, closed afterwards; a domain error becomes the command's
    error message (exit code 1). With `run_jobs_here`, queued work runs in this process."""
    from functools import partial

    from eyes.context import build_context
    from eyes.jobs.queue import ImmediateQueue
    from eyes.jobs.tasks import run_task

    ctx = build_context(_settings())
    if run_jobs_here:
        ctx.jobs = ImmediateQueue(partial(run_task, ctx))
    try:
        yield ctx
    except EyesError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        ctx.close()


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eyes")
def main() -> None:
    """Eyes: self-hosted photo sharing whose tagger learns from its users.

    Every setting is an environment variable (EYES_HOME, EYES_DATABASE_URL, ...): see the README.
    """


@main.command()
@click.option("--host", help="Address to listen on (default: EYES_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: EYES_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Run the web server, with background workers inside it."""
    import uvicorn

    from eyes.app import create_app

    settings = _settings()
    app = create_app(settings)
    click.echo(f"Eyes is starting at http://{host or settings.host}:{port or settings.port}", err=True)
    # The client's address (what per-address rate limits count) comes from X-Forwarded-For only
    # when the connection comes from a proxy in EYES_TRUSTED_PROXIES (uvicorn trusts 127.0.0.1
    # by default; here nothing unless it is named).
    proxies = settings.trusted_proxies.strip()
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


@main.command()
@click.option("--queues", default="tag,train", show_default=True, help="Queues to take work from.")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Tasks at once.")
def worker(queues: str, concurrency: int) -> None:
    """Run a Celery worker for background work (needs EYES_BROKER_URL).

    A training worker on a GPU machine runs `eyes worker --queues train`."""
    from functools import partial

    from eyes.context import build_context
    from eyes.jobs.celery_queue import CeleryQueue, make_celery
    from eyes.jobs.queue import Sweeper
    from eyes.jobs.tasks import run_task, sweep

    settings = _settings()
    if not settings.broker_url:
        raise click.UsageError("set EYES_BROKER_URL (redis://... or amqp://...) to run workers")
    ctx = build_context(settings)
    app = make_celery(settings, run=partial(run_task, ctx))
    ctx.jobs = CeleryQueue(app)
    ctx.tagger.load()  # a broken model file stops the worker at start, with its path and fix
    # The database is the truth about work: each worker re-reads it for pending work, so a lost
    # message or a dead worker is repaired.
    sweeper = Sweeper(partial(sweep, ctx), settings.sweep_interval_s)
    sweeper.start()
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                queues,
                "--concurrency",
                str(concurrency),
                "--pool",
                "threads",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        sweeper.stop()
        ctx.close()


@main.group()
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
def users_create(name: str, admin: bool) -> None:
    """Create an account NAME. The password is read from standard input."""
    from eyes.services.accounts import create_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with _context() as ctx:
        user = create_user(ctx, name, password, admin=admin)
    role = "administrator" if user.is_admin else "user"
    click.echo(f"created {role} {user.username}")


@users.command("invite")
@click.option("--admin", is_flag=True, help="Whoever uses it becomes an administrator.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def users_invite(admin: bool, as_json: bool) -> None:
    """Make a one-time invitation to sign up (with EYES_SIGNUP=closed, only --admin ones work)."""
    from datetime import UTC, datetime, timedelta

    from eyes.services import invitations

    with _context() as ctx:
        code = invitations.create(ctx, None, admin=admin)
        expires = datetime.now(UTC) + timedelta(days=ctx.settings.invitation_days)
    info = {"code": code, "path": f"/signup?invite={code}", "admin": admin, "expires_at": expires.isoformat()}
    if as_json:
        _print_json(info)
    else:
        click.echo(
            f"Open {info['path']} on the server to sign up (once, until {expires:%Y-%m-%d %H:%M} UTC)."
        )


@main.group()
def albums() -> None:
    """An account's albums."""


@albums.command("list")
@click.argument("owner")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def albums_list(owner: str, as_json: bool) -> None:
    """List all of OWNER's albums (unlisted and private too, as OWNER sees them), newest first."""
    from eyes.services import albums as album_service
    from eyes.services.accounts import get_user_by_name

    found = []
    with _context() as ctx:
        user = get_user_by_name(ctx, owner)
        before = None
        while True:  # page by page: an account has at most EYES_MAX_ALBUMS_PER_USER
            page = album_service.list_albums(ctx, user, owner=user.username, before=before, limit=200)
            found += page.items
            if page.next_before is None:
                break
            before = page.next_before
    if as_json:
        _print_json([a.model_dump(mode="json") for a in found])
        return
    for a in found:
        click.echo(f"{a.id}  {a.visibility:<8}  {a.photo_count:>5} photos  {a.title}")
    if not found:
        click.echo(f"{owner} has no albums")


@albums.command("create")
@click.argument("owner")
@click.argument("title")
@click.option("--description", default="", help="What the album is about.")
@click.option(
    "--visibility",
    type=VISIBILITIES,
    default=Visibility.PUBLIC.value,
    show_default=True,
    help="unlisted: only whoever has its link; private: OWNER alone.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def albums_create(owner: str, title: str, description: str, visibility: str, as_json: bool) -> None:
    """Make an album TITLE for the account OWNER; prints its id and address."""
    from eyes.services import albums as album_service
    from eyes.services.accounts import get_user_by_name

    with _context() as ctx:
        user = get_user_by_name(ctx, owner)
        album = album_service.create_album(ctx, user, title, description, Visibility.parse(visibility))
    if as_json:
        _print_json(album.model_dump(mode="json"))
    else:
        click.echo(f"created album {album.id}: {album.url}")


@main.group()
def storage() -> None:
    """Look after the blob store."""


@storage.command("sweep")
@click.option(
    "--older-than-hours",
    default=1.0,
    show_default=True,
    help="Leave younger orphan blobs (uploads in flight).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def storage_sweep(older_than_hours: float, as_json: bool) -> None:
    """Remove stored images no photo refers to, and blobs no image names (left by a crash)."""
    from eyes.jobs.tasks import sweep_storage

    with _context() as ctx:
        images, blobs = sweep_storage(ctx, older_than_hours * 3600)
    if as_json:
        _print_json({"images": images, "blobs": blobs})
    else:
        click.echo(f"removed {images} unreferenced images and {len(blobs)} orphan blobs")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--owner", help="Who owns the photos (default: the only account, if there is one).")
@click.option(
    "--visibility",
    type=VISIBILITIES,
    default=Visibility.PUBLIC.value,
    show_default=True,
)
@click.option(
    "--tags-from-folders", is_flag=True, help="Tag each photo with its folder's name, confirmed by the owner."
)
@click.option(
    "--license",
    "license_",
    type=click.Choice([v.value for v in License]),
    help="The licence of the new photos (default: the owner's default licence, set on the settings page).",
)
@click.option(
    "--skip-near-duplicates",
    is_flag=True,
    help="Leave out images that nearly duplicate a photo the owner has (or an earlier file): the same "
    "scene re-encoded, resized or slightly cropped. Without it they are imported, and listed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def import_(
    path: Path,
    owner: str | None,
    visibility: str,
    tags_from_folders: bool,
    license_: str | None,
    skip_near_duplicates: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Import every image under PATH, skipping what the owner already has."""
    from eyes.services.importer import import_tree

    with _context() as ctx:
        report = import_tree(
            ctx,
            path,
            owner=owner,
            visibility=visibility,
            tags_from_folders=tags_from_folders,
            license=license_,
            skip_near_duplicates=skip_near_duplicates,
            progress=not quiet,
        )
    if as_json:
        _print_json(report.as_dict())
    else:
        click.echo(
            f"imported {report.imported}, already there {report.existing}, "
            f"rejected {len(report.rejected)}, skipped as near-duplicates {report.skipped_near_duplicates} "
            f"({report.seconds:.1f} s)"
        )
        for file, reason in report.rejected:
            click.echo(f"  rejected {file}: {reason}")
        verb = "skipped" if skip_near_duplicates else "imported"
        for file, near in report.near_duplicates:
            click.echo(f"  {verb} {file}: a near-duplicate of {near}")
    if report.rejected:
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: file, tags, model_version.")
def classify(files: tuple[Path, ...], as_json: bool) -> None:
    """Tag image FILES with the champion model; stores nothing."""
    from eyes.services.classify import classify_file

    results: list[dict[str, Any]] = []
    failed = False
    with _context() as ctx:
        for path in files:
            try:
                if not path.is_file():
                    raise click.BadParameter(f"{path} is not a file")
                result = classify_file(ctx, path)
            except (EyesError, click.BadParameter) as exc:
                failed = True
                message = exc.message if isinstance(exc, EyesError) else str(exc.message)
                results.append({"file": str(path), "error": message})
                continue
            results.append(
                {
                    "file": str(path),
                    "tags": [{"name": n, "confidence": round(c, 4)} for n, c in result.tags],
                    "model_version": result.model_version,
                }
            )
    if as_json:
        _print_json(results)
    else:
        for item in results:
            if "error" in item:
                click.echo(f"{item['file']}: error: {item['error']}", err=True)
            else:
                tags = ", ".join(f"{t['name']} {t['confidence']:.0%}" for t in item["tags"]) or "(no tag)"
                click.echo(f"{item['file']}: {tags}")
    if failed:
        sys.exit(1)


@main.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def evaluate(path: Path, as_json: bool) -> None:
    """Measure the champion on a labelled folder tree (folder name = true tag); stores nothing."""
    from eyes.services.classify import evaluate_tree

    with _context() as ctx:
        result = evaluate_tree(ctx, path, progress=not as_json)
    if as_json:
        _print_json(result.as_dict())
        return
    r = result.report
    click.echo(
        f"model {result.model_version}: top-1 accuracy {r.accuracy:.1%}, macro-F1 {r.macro_f1:.3f}, "
        f"n={r.n}, {result.ms_per_image:.1f} ms per image"
    )
    click.echo(f"{'tag':30} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
    for name, c in r.per_class.items():
        click.echo(f"{name[:30]:30} {c.precision:9.3f} {c.recall:7.3f} {c.f1:6.3f} {c.support:5d}")
    for file, reason in result.skipped:
        click.echo(f"skipped {file}: {reason}", err=True)


@main.group()
def models() -> None:
    """Manage the models: the backbone and the tagging heads."""


@models.command("export-backbone")
@click.option("--force", is_flag=True, help="Export again even if a valid file is there.")
def models_export_backbone(force: bool) -> None:
    """Export the pretrained backbone to ONNX in the data folder (needs the training extras).

    A valid export is kept (its checksum is checked) unless --force; a missing or corrupt one is
    written again."""
    from eyes.ml.embedder import Embedder
    from eyes.ml.errors import ModelFileError
    from eyes.ml.files import ONNX_FILE

    settings = _settings()
    onnx = settings.models_dir / ONNX_FILE
    if not force and onnx.exists():
        try:
            click.echo(f"{onnx} is already there and valid ({Embedder(onnx).backbone_id})")
            return
        except ModelFileError as exc:
            click.echo(f"{exc.message}: exporting it again", err=True)
    from eyes.ml.export import export_backbone

    files = export_backbone(settings.models_dir)
    click.echo(f"exported {files.onnx} (sha256 {files.sha256[:12]})")


def _show_version(info: dict[str, Any]) -> None:
    metrics = info.get("metrics") or {}
    line = f"{info['version']}: {info['stage']}"
    if metrics:
        line += f", held-out top-1 {metrics['accuracy']:.1%}, macro-F1 {metrics['macro_f1']:.3f}, mAP {metrics['map']:.3f}"
    click.echo(line)
    if info.get("vocabulary"):
        click.echo(f"  tags ({len(info['vocabulary'])}): {', '.join(info['vocabulary'])}")
    if info.get("n_labelled_photos") is not None:
        click.echo(
            f"  {info.get('depth', 'head')} run on every label: {info['n_labelled_photos']} photos, "
            f"{info['n_positive']} yes and {info['n_negative']} no; evidence from {info['n_held_out']} "
            f"held-out photos; {info.get('seconds')} s"
        )
    baseline = info.get("baseline") or {}
    if baseline.get("logistic_regression_accuracy") is not None:
        click.echo(
            f"  on {baseline['n']} held-out photos: this version {baseline['candidate_accuracy']:.1%}, "
            f"logistic regression on the frozen embeddings {baseline['logistic_regression_accuracy']:.1%}"
        )
    if info.get("reason"):
        click.echo(f"  {info['reason']}")


@main.command()
@click.option("--wait", is_flag=True, help="Train here and now, and report the result.")
@click.option(
    "--deep", is_flag=True, help="Fine-tune the top of the backbone with the head (minutes, not seconds)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
def train(wait: bool, deep: bool, as_json: bool) -> None:
    """Train a new version on every training-grade label; promote it if it wins.

    Without --wait the run is queued for the workers (the ones inside `eyes serve`, or Celery's)."""
    from eyes.domain import TrainingDepth
    from eyes.services import registry, training

    with _context(run_jobs_here=wait) as ctx:
        depth = TrainingDepth.DEEP if deep else TrainingDepth.HEAD
        version_id = training.start_run(ctx, None, depth=depth)
        info = registry.describe_version(ctx, version_id)
    if as_json:
        info.pop("history", None)
        _print_json(info)
    elif wait:
        _show_version(info)
    else:
        name = version_name(version_id)
        click.echo(f"queued training run {name}; see 'eyes models show {name}'")
    if info["stage"] == "failed":
        sys.exit(1)


@main.group()
def tags() -> None:
    """Which tags the network learns: approval of new classes, and tags within tags."""


@tags.command("list")
@click.option("--json", "as_json", is_flag=True)
def tags_list(as_json: bool) -> None:
    """Every tag with its parent and approval, and the classes the next run learns."""
    from eyes.services import dashboard, vocabulary

    with _context() as ctx:
        rows = vocabulary.tags_overview(ctx)
        info = dashboard.overview(ctx, admin=True)
    waiting = set(info["waiting"])
    if as_json:
        _print_json({"tags": rows, "classes": info["classes"], "waiting": sorted(waiting)})
        return
    for row in rows:
        state = "approved" if row["approved"] else ("waits for approval" if row["name"] in waiting else "")
        parent = f" (under {row['parent']})" if row["parent"] else ""
        click.echo(f"{row['name']}{parent}  {state}".rstrip())
    click.echo(f"classes the next run learns: {', '.join(info['classes']) or 'none yet'}")


@tags.command("approve")
@click.argument("names", nargs=-1, required=True)
@click.option("--withdraw", is_flag=True, help="Withdraw the approval instead.")
def tags_approve(names: tuple[str, ...], withdraw: bool) -> None:
    """Approve tags NAMES as classes the network may learn."""
    from eyes.services import vocabulary

    with _context() as ctx:
        done = vocabulary.approve(ctx, None, list(names), approved=not withdraw)
    click.echo(f"{'withdrew approval of' if withdraw else 'approved'}: {', '.join(done)}")


@tags.command("parent")
@click.argument("child")
@click.argument("parent", required=False)
def tags_parent(child: str, parent: str | None) -> None:
    """Put tag CHILD under PARENT (no PARENT: at the top). A label for CHILD is one for PARENT."""
    from eyes.services import vocabulary

    with _context() as ctx:
        vocabulary.set_parent(ctx, None, child, parent)
    click.echo(f"{child} is now under {parent}" if parent else f"{child} is now at the top")


@tags.command("import-hierarchy")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def tags_import_hierarchy(file: Path) -> None:
    """Parents from a CSV: tag,parent[,grandparent...] per line (a header row is skipped)."""
    from eyes.services import vocabulary

    with _context() as ctx:
        n = vocabulary.import_hierarchy(ctx, None, file.read_text(encoding="utf-8"))
    click.echo(f"{n} tag(s) given a parent")


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json: bool) -> None:
    """Every version, newest first; the champion is marked with *."""
    from eyes.services import registry

    with _context() as ctx:
        items = registry.describe_versions(ctx)
        champion = next((item["version"] for item in items if item["champion"]), None)
        day_one = ctx.tagger.day_one_version if champion is None else None
    for item in items:
        item.pop("history", None)
    if as_json:
        _print_json({"champion": champion or day_one, "items": items})
        return
    if champion is None:
        click.echo(f"* {day_one} (day-one model, in service)")
    for item in items:
        acc = item.get("metrics", {}).get("accuracy")
        mark = "*" if item["champion"] else " "
        shown = f"{acc:.1%}" if acc is not None else "—"
        click.echo(
            f"{mark} {item['version']:>5}  {item['stage']:<9} {shown:>6}  "
            f"{item['created_at']:%Y-%m-%d %H:%M}  {item['reason'][:70]}"
        )


@models.command("show")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True)
def models_show(version: str, as_json: bool) -> None:
    """One version: stage, metrics, tags, and why it was promoted or rejected."""
    from eyes.services import registry

    with _context() as ctx:
        info = registry.describe_version(ctx, version)
    if as_json:
        _print_json(info)
    else:
        _show_version(info)


@models.command("promote")
@click.argument("version")
def models_promote(version: str) -> None:
    """Put VERSION in service now (and re-tag every photo with it)."""
    from eyes.services import registry

    with _context(run_jobs_here=True) as ctx:
        registry.promote(ctx, registry.parse_version(version), reason="promoted from the command line")
    click.echo(f"{version} is in service")


@models.command("export")
@click.argument("version")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def models_export(version: str, dest: Path, as_json: bool) -> None:
    """Write VERSION as one self-contained ONNX file, with its card, into the folder DEST.

    VERSION is a version such as v3, 'champion' (the model in service) or 'day-one'. DEST gets
    eyes-VERSION.onnx (backbone, tuned layers, head; labels and thresholds in its metadata),
    README.md (the model card: how to run it, training data, metrics, the gate's evidence) and
    card.json (the same, for programs)."""
    from eyes.services import model_export

    with _context() as ctx:
        exported, files = model_export.export_to(ctx, version, dest)
    if as_json:
        _print_json(
            {
                "model": exported.card["model"],
                "kind": exported.card["kind"],
                "files": [str(f) for f in files],
                "sha256": exported.card["file"]["sha256"],
                "labels": exported.card["labels"],
            }
        )
        return
    card = exported.card
    click.echo(f"exported {card['model']} ({card['kind']}, {len(card['labels'])} labels) to {dest}:")
    for file in files:
        click.echo(f"  {file}")


@models.command("rollback")
def models_rollback() -> None:
    """Put the previous champion back in service."""
    from eyes.services import registry

    with _context(run_jobs_here=True) as ctx:
        previous = registry.rollback(ctx)
        name = version_name(previous) if previous else ctx.tagger.day_one_version
    click.echo(f"{name} is in service again")


@main.group()
def export() -> None:
    """Export what the community made, for others to take away."""


@export.command("dataset")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--tags",
    multiple=True,
    help="Only these tags (comma-separated, or the option repeated); default: every tag with a "
    "training-grade label.",
)
@click.option(
    "--min-agreement",
    type=int,
    help="Trusted voters who must agree for a vote to make a label (default, and least: "
    "EYES_MIN_VOTES_TO_AGREE). The owner's own decisions always count.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["imagefolder", "jsonl"]),
    default="imagefolder",
    show_default=True,
    help="imagefolder: a folder per class (single-label); jsonl: images/ and every label in the manifest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def export_dataset(
    directory: Path,
    tags: tuple[str, ...],
    min_agreement: int | None,
    format_: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Write the community's data set into DIRECTORY (new, or empty).

    Public photos under an open licence (CC0, CC BY, CC BY-SA) with their training-grade labels,
    a manifest.jsonl (labels, who decided them and how, licence, author, content hash) and a
    README.md card. Private, unlisted and all-rights-reserved photos never leave."""
    from tqdm import tqdm

    from eyes.errors import BadRequest
    from eyes.services.dataset import plan_dataset
    from eyes.services.dataset_files import ExportReport, FolderSink, write_dataset

    if directory.exists() and any(directory.iterdir()):
        raise click.UsageError(f"{directory} is not empty: name a new or empty folder (nothing was written)")
    with _context() as ctx:
        try:
            plan = plan_dataset(ctx, tags=tags, min_agreement=min_agreement, format=format_)
        except BadRequest as exc:
            raise click.UsageError(exc.message) from None
        directory.mkdir(parents=True, exist_ok=True)
        report = ExportReport(directory=str(directory))
        steps = write_dataset(ctx, plan, FolderSink(directory), report)
        with tqdm(total=len(plan.items), desc="exporting", unit="photo", disable=quiet) as bar:
            for _ in steps:
                bar.update(1)
    if as_json:
        _print_json(report.as_dict())
    else:
        classes = ", ".join(f"{name} {n}" for name, n in report.classes.items())
        click.echo(f"wrote {report.written} photos to {directory} ({len(report.classes)} classes: {classes})")
        for reason, n in report.skipped.items():
            click.echo(f"  left out {n}: {reason}")
    for sha in report.missing:
        click.echo(f"missing from the store: {sha}", err=True)
    if report.missing:
        sys.exit(1)


@main.group()
def bench() -> None:
    """Benchmarks that exercise the whole platform."""


@bench.command("learn")
@click.option(
    "--dataset",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A labelled folder tree: one folder per tag.",
)
@click.option("--users", default=5, show_default=True, help="Simulated users uploading and labelling.")
@click.option(
    "--schedule", default="2,5,10,20", show_default=True, help="Labelled photos per class after each round."
)
@click.option(
    "--label-share", default=1.0, show_default=True, help="Share of arriving photos that get a label."
)
@click.option(
    "--noise",
    default="0",
    show_default=True,
    help="Share of labels that are wrong; several (0,0.1) draw one curve each.",
)
@click.option("--held-out", default=20, show_default=True, help="Held-out photos per class (never uploaded).")
@click.option(
    "--measure-on",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Measure on this labelled tree (grocery's val) instead of holding out part of DATASET.",
)
@click.option(
    "--depth",
    type=click.Choice(["head", "deep"]),
    default="head",
    show_default=True,
    help="How each round trains.",
)
@click.option(
    "--sybils", default=0, show_default=True, help="Fresh accounts voting a wrong class onto every photo."
)
@click.option("--upload-rest", is_flag=True, help="Upload the photos no round labels too, without a label.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("learning-curve"),
    show_default=True,
    help="Writes OUT.json and OUT.png.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the curve as JSON.")
def bench_learn(
    dataset: Path,
    users: int,
    schedule: str,
    label_share: float,
    noise: str,
    held_out: int,
    measure_on: Path | None,
    depth: str,
    sybils: int,
    upload_rest: bool,
    seed: int,
    out: Path,
    as_json: bool,
) -> None:
    """Simulate a community labelling DATASET and measure how the tagger learns, round by round."""
    from eyes.simulation import Community, plot, simulate

    try:
        steps = tuple(int(x) for x in schedule.split(","))
        noises = [float(x) for x in noise.split(",")]
    except ValueError:
        raise click.BadParameter("--schedule takes whole numbers (2,5,10), --noise shares (0,0.1)") from None
    say = (lambda _: None) if as_json else (lambda m: click.echo(m, err=True))
    curves = {}
    for rate in noises:
        say(f"-- {rate:.0%} wrong labels")
        community = Community(
            users, steps, label_share, rate, held_out, seed, depth, sybils, str(measure_on or ""), upload_rest
        )
        attack = f", {sybils} sybils" if sybils else ""
        curves[f"{depth}, {rate:.0%} wrong labels{attack}"] = simulate(dataset, community, say=say)
    result = {label: curve.as_dict() for label, curve in curves.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(result, indent=2))
    plot(curves, Path(f"{out}.png"))
    if as_json:
        _print_json(result)
    else:
        click.echo(f"wrote {out}.json and {out}.png")


@main.group()
def faces() -> None:
    """Faces found in photos (EYES_FACES, and each owner's own preference)."""


@faces.command("scan")
@click.option("--owner", help="Only this account's photos (default: every owner with faces on).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def faces_scan(owner: str | None, as_json: bool, quiet: bool) -> None:
    """Look for faces in the stored photos of owners who turned faces on and that were not
    scanned yet. Resumable: stopped and started again, it goes on where it was."""
    from tqdm import tqdm

    from eyes.services import face_scan
    from eyes.services import faces as face_service
    from eyes.services.accounts import get_user_by_name

    with _context() as ctx:
        if not ctx.settings.faces:
            raise click.ClickException("faces are off for this instance: set EYES_FACES=true first")
        owner_id = get_user_by_name(ctx, owner).id if owner else None
        total = face_service.count_unscanned(ctx, owner_id)
        with tqdm(total=total, desc="faces", unit="photo", disable=quiet or as_json) as bar:
            done = face_scan.scan_all(ctx, owner_id, progress=bar.update)
        left = face_service.count_unscanned(ctx, owner_id)
    if as_json:
        _print_json({"scanned": done, "left": left})
    else:
        click.echo(f"looked for faces in {done} photos ({left} left)")


@faces.command("group")
@click.option("--owner", help="Only this account's faces (default: every account with faces).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def faces_group(owner: str | None, as_json: bool) -> None:
    """Group the unnamed faces of each owner again (after every scan this happens by itself)."""
    from eyes.services import people
    from eyes.services.accounts import get_user_by_name

    with _context() as ctx:
        if not ctx.settings.faces:
            raise click.ClickException("faces are off for this instance: set EYES_FACES=true first")
        owners = [get_user_by_name(ctx, owner)] if owner else None
        ids = [u.id for u in owners] if owners else people.owners_with_faces(ctx)
        results = {owner_id: people.group(ctx, owner_id) for owner_id in ids}
    faces_seen = sum(r.faces for r in results.values())
    groups = sum(r.groups for r in results.values())
    if as_json:
        _print_json({"owners": len(results), "faces": faces_seen, "groups": groups})
    else:
        click.echo(f"grouped {faces_seen} unnamed faces of {len(results)} accounts into {groups} groups")


@main.group()
def people() -> None:
    """The people owners named in their photos (each owner's own)."""


@people.command("list")
@click.option("--owner", required=True, help="The account whose people to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def people_list(owner: str, as_json: bool) -> None:
    """List the people OWNER named, with their tag, audience and counts."""
    from eyes.services import people_views
    from eyes.services.accounts import get_user_by_name

    with _context() as ctx:
        named = people_views.list_people(ctx, get_user_by_name(ctx, owner))
    if as_json:
        _print_json([p.model_dump(mode="json") for p in named])
        return
    for p in named:
        click.echo(f"{p.id:>6}  {p.tag:<30}  {p.photo_count:>5} photos  seen by {p.audience}  {p.name}")
    if not named:
        click.echo(f"{owner} has named nobody")
