"""One place renders every error: JSON for the API, an HTML page for people.

The handlers are `async def`: Starlette awaits them on the event loop, where the JSON answers
are made (no thread hop for a flood of refusals). A page asks the database (the viewer's notices,
in `pages.render`), so it is made on the thread pool."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from eyes.errors import Busy, EyesError, NotFound, TooManyRequests
from eyes.services import outages

log = logging.getLogger(__name__)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path == "/healthz":
        return True
    return "text/html" not in request.headers.get("accept", "")


async def _render(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )
    from eyes.web.pages import login_redirect, render

    if status == 401:
        return login_redirect(request)
    response = await run_in_threadpool(
        render, request, "error.html", status_code=status, status=status, message=message
    )
    response.headers.update(headers or {})
    return response


async def handle_eyes_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EyesError)
    return with_retry_after(exc, await _render(request, exc.status_code, exc.code, exc.message))


def with_retry_after(exc: EyesError, response: Response) -> Response:
    """`response` with the `Retry-After` of a refusal that has one (429, or 503 when busy): the
    error handler's answers, and the forms that show their own error (sign-in, sign-up)."""
    if isinstance(exc, TooManyRequests | Busy):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail) if exc.status_code != 404 else "there is nothing at this address"
    return await _render(request, exc.status_code, "http_error", message)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
        # An id out of range, or not a number: no such thing exists at this address.
        return await _render(request, 404, NotFound.code, "there is nothing at this address")
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return await _render(request, 422, "invalid_request", "; ".join(problems) or "invalid request")


async def handle_database_down(request: Request, exc: Exception) -> Response:
    # The database library's error (a 503 that says to try again), named through services/outages
    # without the web layer importing the library.
    unavailable = outages.DatabaseUnavailable(exc)
    log.warning("database unavailable: %s", unavailable.reason)
    return await handle_eyes_error(request, unavailable)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # A bug: nothing of it in the answer. The exception goes on up after this answer is sent, so
    # the server logs its traceback for whoever runs the site.
    code, message = "internal_error", "something went wrong on our side; try again later"
    try:
        return await _render(request, 500, code, message)
    except Exception:  # the page itself failed to render: the plain JSON answer still goes out
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Exception, handle_unexpected)
    for database_down in outages.DATABASE_DOWN:
        app.add_exception_handler(database_down, handle_database_down)
    app.add_exception_handler(EyesError, handle_eyes_error)
    app.add_exception_handler(HTTPException, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
