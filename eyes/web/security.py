"""Security headers on every response: what a browser may load, frame, send and remember."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(*, script_src: str = "'self'", style_src: str = "'self'") -> str:
    """Only this site's own files: no inline script (the pages load theirs from /static), no
    plugins, no framing by other sites, forms post only here. Photos are served from here too."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_src}",
            f"style-src {style_src}",
            "img-src 'self' data:",  # data: for the small icons in stylesheets (Swagger UI's)
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CSP = content_security_policy()
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of the domain are not ours
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",  # what frame-ancestors says, for browsers that predate it
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to every HTTP response that lacks them.

    A response that sets one itself keeps its own (the /docs page widens script-src by the hash
    of its one inline script). Strict-Transport-Security only when the site is served over
    HTTPS (the same setting that makes cookies HTTPS-only): over plain HTTP it would lock
    browsers out of a site that has no certificate."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = dict(HEADERS, **({"strict-transport-security": HSTS} if hsts else {}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
