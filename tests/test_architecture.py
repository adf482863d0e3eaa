"""Rules of the code that no type checker sees (import-linter checks the layers in `make lint`)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.orm import Session

from eyes.services import accounts, registry, sessions

ROOT = Path(__file__).resolve().parents[1]
EYES = ROOT / "eyes"
WEB = EYES / "web"


def _service_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names a web module binds to service modules, and to functions imported from them."""
    modules, functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eyes.services"):
            for alias in node.names:
                name = alias.asname or alias.name
                (modules if node.module == "eyes.services" else functions).add(name)
    return modules, functions


def _blocking_calls(function: ast.AsyncFunctionDef, modules: set[str], functions: set[str]) -> list[str]:
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if isinstance(target, ast.Name) and target.id in functions:
            if not target.id[0].isupper():  # a class: a value, built here
                found.append(target.id)
        elif isinstance(target, ast.Attribute):
            root: ast.expr = target
            parts = []
            while isinstance(root, ast.Attribute):
                parts.append(root.attr)
                root = root.value
            if not isinstance(root, ast.Name):
                continue
            name = ".".join([root.id, *reversed(parts)])
            if root.id == "ctx" or (root.id in modules and not target.attr[0].isupper()):
                found.append(name)
    return found


def test_async_routes_never_block_the_event_loop() -> None:
    """A database query, a store read or a Redis round trip inside an `async def` route stalls
    every other request of the server: they go through `run_in_threadpool` instead."""
    offenders = {}
    for path in sorted(WEB.glob("*.py")):
        tree = ast.parse(path.read_text())
        modules, functions = _service_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.AsyncFunctionDef):
                calls = _blocking_calls(node, modules, functions)
                if calls:
                    offenders[f"{path.name}:{node.name}"] = calls
    assert offenders == {}


def test_the_rule_finds_a_blocking_call() -> None:
    tree = ast.parse(
        "from eyes.services import photos as photo_service\n"
        "async def route(ctx):\n"
        "    await run_in_threadpool(photo_service.upload_photo, ctx)\n"
        "    return photo_service.get_photo(ctx, 1), ctx.limits.hit('x')\n"
    )
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef))
    assert _blocking_calls(function, *_service_names(tree)) == ["photo_service.get_photo", "ctx.limits.hit"]


# Tools that make their data beneath the services' rules, on purpose: the simulated sybils vote
# without the per-account rate limit, and the grocery draws label photos wholesale.
BENEATH_THE_RULES = {
    "eyes/simulation.py": {"eyes.services.labels.vote"},
    "benchmarks/grocery_draws.py": {"eyes.services.tags.set_owner_tag"},
}
_SESSION = re.compile(r"(\w+\.)*Session( \| None)?")


def _takes_a_session(function: Callable[..., object]) -> bool:
    for parameter in inspect.signature(function).parameters.values():
        annotation = parameter.annotation  # a string where the module postpones annotations
        if annotation is Session or (isinstance(annotation, str) and _SESSION.fullmatch(annotation)):
            return True
    return False


def _service_functions_named(tree: ast.Module) -> set[str]:
    """The services' functions a module names: imported by name, or as `module.function`."""
    modules, named = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eyes.services"):
            for alias in node.names:
                if node.module == "eyes.services":
                    modules[alias.asname or alias.name] = f"eyes.services.{alias.name}"
                else:
                    named.add(f"{node.module}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            named.add(f"{modules[node.value.id]}.{node.attr}")
    return named


def _handed_a_session(tree: ast.Module) -> set[str]:
    found = set()
    for name in _service_functions_named(tree):
        module, _, attribute = name.rpartition(".")
        function = getattr(importlib.import_module(module), attribute, None)
        if inspect.isfunction(function) and _takes_a_session(function):
            found.add(name)
    return found


def test_nothing_outside_the_services_hands_them_a_session() -> None:
    """Services are the only door to the database: the web layer, the command line, the jobs and
    the benchmarks give them the context and get back what they return; a service that works in
    its caller's transaction is for other services only."""
    outside = [
        path
        for path in [*EYES.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
        if not path.is_relative_to(EYES / "services") and not path.is_relative_to(EYES / "db")
    ]
    offenders = {}
    for path in sorted(outside):
        name = path.relative_to(ROOT).as_posix()
        found = _handed_a_session(ast.parse(path.read_text())) - BENEATH_THE_RULES.get(name, set())
        if found:
            offenders[name] = sorted(found)
    assert offenders == {}


def test_the_rule_finds_a_session_handed_over() -> None:
    tree = ast.parse(
        "from eyes.services import labels as label_service\n"
        "from eyes.services.vocabulary import approved_tags, approve\n"
        "def run(ctx, session):\n"
        "    approve(ctx, None, ['cat'])\n"
        "    return label_service.vote(session, ...), label_service.cast_vote(ctx, ...)\n"
    )
    assert _handed_a_session(tree) == {"eyes.services.labels.vote", "eyes.services.vocabulary.approved_tags"}


@pytest.mark.parametrize("module", [accounts, sessions, registry], ids=lambda m: m.__name__)
def test_accounts_and_the_registry_take_the_context(module: ModuleType) -> None:
    """The doors the web layer and the command line use most: every public function takes the
    context (or no database at all), never a session; in-transaction helpers are private."""
    public = [
        name
        for name, function in vars(module).items()
        if inspect.isfunction(function)
        and function.__module__ == module.__name__
        and not name.startswith("_")
    ]
    assert public, "the module has a public surface"
    assert [name for name in public if _takes_a_session(vars(module)[name])] == []


# A model version spelled by hand: an f-string's "v{", a template's "v{{", a log line's "v%s".
_VERSION_BY_HAND = re.compile(r"""(?:f["'][^"'\n]*(?<![\w{])v\{)|(?:\bv\{\{)|(?:["'][^"'\n]*\bv%[sd])""")


def _versions_by_hand(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if _VERSION_BY_HAND.search(line)]


def test_a_model_version_is_named_in_one_place() -> None:
    """`v7` in messages, links, file keys and pages comes from `domain.version_name`: a name
    spelled by hand somewhere is the one that drifts when the naming changes."""
    found = {
        str(path.relative_to(ROOT)): lines
        for path in [*EYES.rglob("*.py"), *WEB.rglob("*.html"), *(ROOT / "benchmarks").glob("*.py")]
        if path != EYES / "domain.py" and (lines := _versions_by_hand(path.read_text()))
    }
    assert found == {}, f"use domain.version_name: {found}"


def test_the_rule_finds_a_version_spelled_by_hand() -> None:
    assert _versions_by_hand('    return redirect(f"/models/v{version_id}")')
    assert _versions_by_hand("""    echo(f"queued v{run.id}; see 'eyes models show v{run.id}'")""")
    assert _versions_by_hand("<a href='/models/v{{ version.id }}'>")
    assert _versions_by_hand('    name = f"v{version_id}"')
    assert _versions_by_hand('    thread = Thread(name=f"eyes-heartbeat-v{version_id}")')
    assert _versions_by_hand('    log.warning("training run v%s failed: %s", version_id, reason)')
    assert not _versions_by_hand('    return redirect(f"/models/{version_name(version_id)}")')
    assert not _versions_by_hand('    sizes = f"{w}x{h}"')
    assert not _versions_by_hand('    name = f"{prefix}{version_name(v)}"')
    assert not _versions_by_hand('    message = f"{{v{n}}}"')


def test_the_next_page_link_is_made_in_one_place() -> None:
    """Every list's "next" (the feed, a tag, search, albums, an album, a person) is this page's
    query with the service's cursor, made by `deps.next_page`: by hand, six copies tested for the
    end two ways (`is not None`, truthiness)."""
    by_hand = {
        path.name: [
            line.strip()
            for line in path.read_text().splitlines()
            if re.search(r"params\((before|after)=", line)
        ]
        for path in WEB.glob("*.py")
        if path.name != "deps.py"
    }
    assert {name: lines for name, lines in by_hand.items() if lines} == {}


def test_every_route_of_the_site_checks_its_ids_then_the_csrf_token() -> None:
    """The routers come from eyes/web/routers.py: a router made by hand would serve a path
    whose `photo_id` is " 4" or 10**30 (a server error), or a form without its token."""
    from fastapi.routing import APIRoute

    from eyes.app import ROUTERS
    from eyes.web.deps import check_csrf, ids_in_range

    routes = [route for module in ROUTERS for route in module.router.routes]
    assert len(routes) > 100, "the site's routes are all here"
    for route in routes:
        assert isinstance(route, APIRoute), route
        first_two = [dependency.call for dependency in route.dependant.dependencies[:2]]
        assert first_two == [ids_in_range, check_csrf], f"{route.path} {route.methods}"
