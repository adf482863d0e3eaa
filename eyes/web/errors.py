"""One place renders every error: JSON for the API, an HTML page for people."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from eyes.errors import Busy, EyesError, NotFound, TooManyRequests

log = logging.getLogger(__name__)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path == "/healthz":
        return True
    return "text/html" not in request.headers.get("accept", "")


def _render(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )
    from eyes.web.pages import login_redirect, render

    if status == 401:
        return login_redirect(request)
    response = render(request, "error.html", status_code=status, status=status, message=message)
    response.headers.update(headers or {})
    return response


async def handle_eyes_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EyesError)
    return with_retry_after(exc, _render(request, exc.status_code, exc.code, exc.message))


def with_retry_after(exc: EyesError, response: Response) -> Response:
    """`response` with the `Retry-After` of a refusal that has one (429, or 503 when busy): the
    error handler's answers, and the forms that show their own error (sign-in, sign-up)."""
    if isinstance(exc, TooManyRequests | Busy):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail) if exc.status_code != 404 else "there is nothing at this address"
    return _render(request, exc.status_code, "http_error", message)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
        # An id out of range, or not a number: no such thing exists at this address.
        return _render(request, 404, NotFound.code, "there is nothing at this address")
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return _render(request, 422, "invalid_request", "; ".join(problems) or "invalid request")


async def handle_database_down(request: Request, exc: Exception) -> Response:
    # A lost connection (the database restarting, say): fail this request cleanly; the pool
    # checks connections before use, so the next request reconnects by itself.
    # The driver's message, not the statement: a statement can be huge, and it carries user input.
    log.warning("database unavailable: %s", getattr(exc, "orig", None) or type(exc).__name__)
    return _render(
        request, 503, "database_unavailable", "the database is unavailable right now; try again shortly"
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # A bug: nothing of it in the answer. The exception goes on up after this answer is sent, so
    # the server logs its traceback for whoever runs the site.
    code, message = "internal_error", "something went wrong on our side; try again later"
    try:
        return _render(request, 500, code, message)
    except Exception:  # the page itself failed to render: the plain JSON answer still goes out
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Exception, handle_unexpected)
    app.add_exception_handler(OperationalError, handle_database_down)
    app.add_exception_handler(InterfaceError, handle_database_down)
    app.add_exception_handler(EyesError, handle_eyes_error)
    app.add_exception_handler(HTTPException, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
