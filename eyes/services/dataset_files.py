"""Writing a planned data set (services/dataset.py): to a folder (the command line) or as a zip
streamed to a browser or client (the API). One image in memory at a time, never the archive."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from eyes.context import Context
from eyes.errors import EyesError
from eyes.images import without_location
from eyes.services import image_store
from eyes.services.dataset import CARD, MANIFEST, DatasetPlan, card


class Sink(Protocol):
    """Where the files of a data set go, by '/'-separated relative name."""

    def write(self, name: str, data: bytes) -> None: ...

    def open(self, name: str) -> BinaryIO:
        """A stream to write one file to, closed by the caller (for the manifest: written line
        by line, never built in memory)."""


def checked_name(name: str) -> PurePosixPath:
    """A relative name inside the data set, or ValueError: folder names come from tags, and no
    tag may write outside the folder asked for (services/dataset.py's folder_name makes them
    safe; this is the last guard)."""
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/"))
    ):
        raise ValueError(f"unsafe name in a data set: {name!r}")
    return path


class FolderSink:
    """Files under a folder on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, name: str) -> Path:
        path = (self.root / checked_name(name)).resolve()
        if not path.is_relative_to(self.root):  # a symbolic link planted in the folder
            raise ValueError(f"{name!r} would be written outside {self.root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, name: str, data: bytes) -> None:
        self._path(name).write_bytes(data)

    def open(self, name: str) -> BinaryIO:
        return open(self._path(name), "wb")


class ZipSink:
    """Entries of a zip file under one top folder (what unzipping makes)."""

    def __init__(self, archive: zipfile.ZipFile, top: str, when: tuple[int, int, int, int, int, int]) -> None:
        self.archive = archive
        self.top = top
        self.when = when

    def write(self, name: str, data: bytes) -> None:
        # Photos are compressed already: stored as they are, no CPU spent for nothing.
        self.archive.writestr(self._info(name), data, compress_type=zipfile.ZIP_STORED)

    def open(self, name: str) -> BinaryIO:
        info = self._info(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        return self.archive.open(info, "w", force_zip64=True)  # type: ignore[return-value]

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(f"{self.top}/{checked_name(name)}", self.when)
        info.external_attr = 0o644 << 16  # a plain readable file once unzipped
        return info


@dataclass
class ExportReport:
    """What an export wrote."""

    directory: str = ""
    written: int = 0
    reencoded: int = 0  # originals whose file said where they were taken
    missing: list[str] = field(default_factory=list)  # images the blob store could not give
    classes: dict[str, int] = field(default_factory=dict)
    licenses: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "directory": self.directory,
            "images": self.written,
            "reencoded_without_location": self.reencoded,
            "missing": self.missing,
            "classes": self.classes,
            "licenses": self.licenses,
            "skipped": self.skipped,
        }


def write_dataset(ctx: Context, plan: DatasetPlan, sink: Sink, report: ExportReport) -> Iterator[str]:
    """Write every image of `plan`, then its manifest and card, into `sink`; yields after each
    image (its name), so a caller can show progress or send what is ready."""
    written: dict[str, str | None] = {}  # sha -> the re-encoded file's hash, if any
    for item in plan.items:
        try:
            with ctx.blobs.open(image_store.original_key(item.sha256)) as blob:
                data = blob.read()
        except EyesError:  # the store lost it (or is down): the rest of the export goes on
            report.missing.append(item.sha256)
            yield item.path
            continue
        # Never a location: a file that carries one goes out re-encoded without metadata.
        clean = without_location(data, max_pixels=ctx.settings.max_image_pixels)
        sink.write(item.path, data if clean is None else clean)
        written[item.sha256] = None if clean is None else hashlib.sha256(clean).hexdigest()
        report.written += 1
        report.reencoded += clean is not None
        yield item.path
    with sink.open(MANIFEST) as manifest:
        for item in plan.items:
            if item.sha256 in written:
                manifest.write((item.manifest_line(written[item.sha256]) + "\n").encode())
    kept = [item for item in plan.items if item.sha256 in written]
    shown = DatasetPlan(plan.format, plan.tags, plan.min_agreement, kept, plan.skipped, plan.created_at)
    sink.write(CARD, card(shown, report.written, len(report.missing)).encode())
    report.classes, report.licenses, report.skipped = (
        shown.class_counts(),
        shown.license_counts(),
        plan.skipped,
    )


class _Pending(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken away as they come (zipfile then
    writes each entry's sizes after its data, so nothing is ever rewound)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def zip_stream(ctx: Context, plan: DatasetPlan) -> Iterator[bytes]:
    """The data set as a zip, produced while it is sent: one image's bytes in memory at a time."""
    pending = _Pending()
    when = plan.created_at.timetuple()[:6]
    with zipfile.ZipFile(pending, "w", allowZip64=True) as archive:
        sink = ZipSink(archive, plan.name, (when[0], when[1], when[2], when[3], when[4], when[5]))
        for _ in write_dataset(ctx, plan, sink, ExportReport()):
            if chunk := pending.take():
                yield chunk
    yield pending.take()  # the central directory, written when the archive closes
