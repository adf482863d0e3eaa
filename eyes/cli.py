"""The `eyes` command. Exit codes: 0 success, 1 the work failed (in part), 2 usage error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from eyes.config import Settings, get_settings
from eyes.errors import EyesError


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic explains which setting is wrong
        raise click.ClickException(f"invalid settings: {exc}") from None


def _fail(exc: EyesError) -> click.ClickException:
    return click.ClickException(exc.message)


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
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="info")


@main.group()
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
def users_create(name: str, admin: bool) -> None:
    """Create an account NAME. The password is read from standard input."""
    from eyes.context import build_context
    from eyes.db.session import transaction
    from eyes.services.accounts import create_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    ctx = build_context(_settings())
    try:
        with transaction(ctx.sessions) as session:
            user = create_user(session, name, password, admin=admin)
    except EyesError as exc:
        raise _fail(exc) from None
    finally:
        ctx.close()
    role = "administrator" if user.is_admin else "user"
    click.echo(f"created {role} {user.username}")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--owner", help="Who owns the photos (default: the only account, if there is one).")
@click.option(
    "--visibility",
    type=click.Choice(["public", "unlisted", "private"]),
    default="public",
    show_default=True,
)
@click.option(
    "--tags-from-folders", is_flag=True, help="Tag each photo with its folder's name, confirmed by the owner."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_(path: Path, owner: str | None, visibility: str, tags_from_folders: bool, as_json: bool) -> None:
    """Import every image under PATH, skipping what the owner already has."""
    from eyes.context import build_context
    from eyes.services.importer import import_tree

    ctx = build_context(_settings())
    try:
        report = import_tree(
            ctx,
            path,
            owner=owner,
            visibility=visibility,
            tags_from_folders=tags_from_folders,
            progress=not as_json,
        )
    except EyesError as exc:
        raise _fail(exc) from None
    finally:
        ctx.close()
    if as_json:
        _print_json(report.as_dict())
    else:
        click.echo(
            f"imported {report.imported}, already there {report.existing}, "
            f"rejected {len(report.rejected)} ({report.seconds:.1f} s)"
        )
        for file, reason in report.rejected:
            click.echo(f"  rejected {file}: {reason}")
    if report.rejected:
        sys.exit(1)
