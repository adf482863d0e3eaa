"""Rules of the code that no type checker sees (import-linter checks the layers in `make lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parents[1] / "eyes" / "web"
# Calls into the services that only compute (no database, no store, no lock): fine on the loop.
PURE = {"parse_tag_list", "normalize_tag"}


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
        if isinstance(target, ast.Name) and target.id in functions and target.id not in PURE:
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
            if root.id == "ctx" or (
                root.id in modules and not target.attr[0].isupper() and target.attr not in PURE
            ):
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
