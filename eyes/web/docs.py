"""/docs: Swagger UI served from this site, so the API docs work offline and behind the policy.

The JavaScript and CSS come from the pinned `fastapi-offline` package (Swagger UI's own dist
files), not from a CDN. FastAPI's page starts Swagger UI with one inline script; the page's
Content-Security-Policy allows exactly that script, by its hash, and is otherwise the policy of
every page (Swagger UI renders, and "Try it out" works, without inline styles or eval)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from eyes.web.security import content_security_policy

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _script_hashes(html: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def install(app: FastAPI) -> None:
    """Serve /docs and its assets. The app must be built with docs_url=None and redoc_url=None
    (FastAPI's own pages load Swagger UI and ReDoc from a CDN)."""
    assert app.openapi_url is not None
    page = bytes(
        get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            # By default Swagger UI sends the document to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        ).body
    ).decode()
    policy = content_security_policy(script_src=" ".join(["'self'", *_script_hashes(page)]))

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": policy})
