"""create_app(settings): the one place that wires the parts together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp

from eyes.config import Settings, get_settings
from eyes.context import Context, build_context
from eyes.jobs.queue import InProcessQueue, Sweeper
from eyes.jobs.tasks import run_task, sweep
from eyes.services import invitations
from eyes.web import (
    api,
    api_albums,
    api_learning,
    api_moderation,
    api_people,
    docs,
    errors,
    media,
    pages,
    pages_albums,
    pages_learning,
    pages_moderation,
    pages_people,
)
from eyes.web.security import SecurityHeaders
from eyes.web.uploads import FORM_OVERHEAD, BodyLimit

STATIC = Path(__file__).parent / "web" / "static"
# The site's routers (eyes/web/routers.py makes them), in the order their routes are matched.
ROUTERS = (
    api,
    api_albums,
    api_learning,
    api_moderation,
    api_people,
    media,
    pages,
    pages_albums,
    pages_learning,
    pages_moderation,
    pages_people,
)
log = logging.getLogger("eyes")


def start_workers(ctx: Context) -> Sweeper | None:
    """The embedded default: background work on a thread pool in this process, with the sweep.
    With a broker, work goes to Celery and the workers (`eyes worker`) sweep."""
    if ctx.settings.broker_url:
        from eyes.jobs.celery_queue import CeleryQueue, make_celery

        ctx.jobs = CeleryQueue(make_celery(ctx.settings))
        return None
    ctx.jobs = InProcessQueue(partial(run_task, ctx), ctx.settings.worker_threads)
    sweeper = Sweeper(partial(sweep, ctx), ctx.settings.sweep_interval_s)
    sweeper.start()
    return sweeper


def announce_setup_code(ctx: Context) -> None:
    """While there is no administrator, print a one-time link that makes one: the first visitor
    of a fresh server reachable from anywhere must not be able to claim it."""
    code = invitations.setup_code(ctx)
    if code is not None:
        log.warning(
            "Eyes has no administrator yet. Open /signup?invite=%s on this server to create one "
            "(it works once, and only this newest link works), or run `eyes users create NAME --admin`.",
            code,
        )


class Eyes(FastAPI):
    """FastAPI with the security headers outside everything else, so that even the answer of
    the server-error middleware (which sits outside all added middleware) carries them."""

    def __init__(self, *, https_only: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.https_only = https_only

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), hsts=self.https_only)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ctx = build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.tagger.load()  # a missing or broken model file stops the start, with its path and fix
        announce_setup_code(ctx)
        sweeper = start_workers(ctx)
        ctx.similar.warm_up()  # the index of similar photos, built while the server starts serving
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.stop()
            ctx.similar.stop()
            ctx.close()

    app = Eyes(
        https_only=settings.secure_cookies,
        title="Eyes",
        version="0.1.0",
        summary="Photo sharing whose tagger learns from its users",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN; docs.install serves /docs
        redoc_url=None,
        # The routers' own routes, built once when their modules were imported. include_router
        # would have FastAPI build every route again for each app, on its first request (0.3 s
        # of validators and dependency trees), which a server pays once and the tests each time.
        # So app.dependency_overrides does not reach them: tests build apps from settings instead.
        routes=[route for module in ROUTERS for route in module.router.routes],
    )
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret(),
        session_cookie="eyes_session",
        max_age=int(settings.session_days * 24 * 3600),
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + FORM_OVERHEAD)
    docs.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        with ctx.engine.connect() as connection:  # the app can serve only if the database answers
            connection.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok"})

    return app
