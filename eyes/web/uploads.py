"""Receiving uploaded files: bounded while streaming, spooled to disk, never all in memory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eyes.errors import BadRequest, PayloadTooLarge

FORM_OVERHEAD = 1024 * 1024  # room for the multipart framing and the text fields


class BodyLimit:
    """ASGI middleware: a request body past the limit is refused as it streams in (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse(
                {"error": {"code": PayloadTooLarge.code, "message": self._message()}},
                status_code=PayloadTooLarge.status_code,
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, bounded, send)

    def _message(self) -> str:
        return f"the upload is larger than {(self.limit - FORM_OVERHEAD) // (1024 * 1024)} MB"


@dataclass
class ReceivedFile:
    path: Path
    filename: str


@asynccontextmanager
async def received_file(
    request: Request, tmp_dir: Path, max_bytes: int
) -> AsyncIterator[tuple[FormData, ReceivedFile]]:
    """The form and its one image (field `file`), copied to a temporary file removed afterwards."""
    form = await request.form(max_files=1, max_fields=100)
    received: ReceivedFile | None = None
    try:
        value = form.get("file")
        if value is None:
            raise BadRequest("send the image as the multipart field 'file'")
        if not isinstance(value, UploadFile):
            raise BadRequest("'file' must be a file part (multipart/form-data)")
        if value.size is not None and value.size > max_bytes:
            raise PayloadTooLarge(f"{value.filename} is larger than {max_bytes // (1024 * 1024)} MB")
        if value.size == 0:
            raise BadRequest(f"{value.filename or 'the file'} is empty")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="upload-", delete=False) as out:
            await value.seek(0)
            shutil.copyfileobj(value.file, out, 1 << 20)
        received = ReceivedFile(Path(out.name), value.filename or "")
        yield form, received
    finally:
        if received is not None:
            received.path.unlink(missing_ok=True)
        await form.close()
