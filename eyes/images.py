"""Image validation and derivatives: decode once, orient, read EXIF, make thumbnails.

A file is an image only if Pillow decodes it completely: names and content types are never trusted.
"""

from __future__ import annotations

import io
import math
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from eyes.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType

# What Pillow calls the formats we accept (MPO is the multi-picture JPEG some cameras write).
ACCEPTED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
THUMB_MIME = "image/jpeg"

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 36867
_OFFSET_TIME_ORIGINAL = 0x9011
_MAKE, _MODEL = 0x010F, 0x0110
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434  # in the EXIF IFD
MAX_EXIF_TEXT = 200  # camera and lens: what the columns hold
CORRUPT_EXIF = "Corrupt EXIF data"  # how Pillow's warning about a broken EXIF block starts
# Dates a camera can have taken a photo on: from the first photograph to a day ahead of now (a
# camera's clock in a zone ahead of UTC). Anything else is a clock never set, or garbage.
_EARLIEST_TAKEN = datetime(1826, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GPS:
    latitude: float
    longitude: float


ORIENTATION = 0x0112  # the EXIF tag
QUARTER_TURNS = {5, 6, 7, 8}  # its values that swap width and height


@dataclass
class DecodedImage:
    """A validated, decoded and upright image with what we keep of its metadata."""

    image: Image.Image
    format: str  # jpeg, png, webp, gif
    width: int
    height: int
    taken_at: datetime | None
    camera: str
    gps: GPS | None
    lens: str = ""


@dataclass(frozen=True)
class PhotoMetadata:
    """What Eyes keeps of a photo's EXIF: read once, from the decode that validates it."""

    taken_at: datetime | None = None
    camera: str = ""
    lens: str = ""
    gps: GPS | None = None


@contextmanager
def _readable_image(source: Path | io.BytesIO, max_pixels: int) -> Iterator[Image.Image]:
    """Open an image lazily (header only), check its format and size, and turn every way Pillow
    can fail into a clear 4xx error, also while the caller decodes it."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns below twice its limit: ours is exact (below).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # A broken EXIF block: Pillow warns and reads on; the metadata is dropped (below).
            warnings.filterwarnings("ignore", CORRUPT_EXIF, UserWarning)
            with Image.open(source) as img:
                if img.format not in ACCEPTED_FORMATS:
                    raise UnsupportedMediaType(
                        f"{img.format} images are not accepted; upload JPEG, PNG, WebP or GIF"
                    )
                width, height = img.size
                if width * height > max_pixels:
                    raise PayloadTooLarge(
                        f"the image is {width}x{height} = {width * height:,} pixels; "
                        f"the limit is {max_pixels:,} pixels"
                    )
                yield img
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"the image has too many pixels ({exc})") from None
    except UnidentifiedImageError:
        raise InvalidImage("the file is not an image Eyes can read (JPEG, PNG, WebP or GIF)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image is damaged and cannot be decoded ({exc})") from None


def decode(data: bytes, *, max_pixels: int, longest_side: int | None = None) -> DecodedImage:
    """Open, check and decode an image's bytes; raise a clear 4xx error for anything else.

    `longest_side`: what the caller needs of the pixels. A JPEG is then decoded at the smallest
    scale (1/2, 1/4 or 1/8) whose longest side is still at least that: a 12-megapixel photo for a
    1,600-pixel image decodes at half scale, three times faster, and every byte is still read
    (a truncated file fails as before). `width` and `height` are the original's."""
    with _readable_image(io.BytesIO(data), max_pixels) as img:
        width, height = img.size
        if longest_side is not None and max(width, height) > longest_side:
            scale = longest_side / max(width, height)
            img.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))  # a no-op but for JPEG
        img.load()  # decodes the first frame completely: truncated files fail here
        fmt = ACCEPTED_FORMATS[str(img.format)]
        meta = read_metadata(img)
        if _upright(img):  # turned a quarter: the original's sides swap too
            width, height = height, width
    return DecodedImage(
        image=img,
        format=fmt,
        width=width,
        height=height,
        taken_at=meta.taken_at,
        camera=meta.camera,
        gps=meta.gps,
        lens=meta.lens,
    )


def _upright(img: Image.Image) -> bool:
    """Apply the EXIF orientation, in place (a copy of a 60-megapixel image is another 240 MB);
    True when that turned it a quarter (its sides swap). An EXIF block too broken to say which
    way is up leaves the image as it was decoded."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", CORRUPT_EXIF, UserWarning)
            orientation = img.getexif().get(ORIENTATION)
            ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # Pillow's EXIF parser raises many kinds on crafted data; none is fatal here
        return False
    return orientation in QUARTER_TURNS


def read_metadata(img: Image.Image) -> PhotoMetadata:
    """Date taken, camera, lens and location from the EXIF of an opened image; whatever is
    missing, malformed or hostile is left out: metadata never makes a good image unreadable."""
    try:
        with warnings.catch_warnings():
            # Pillow warns, then skips, where an EXIF block's offsets point nowhere.
            warnings.filterwarnings("ignore", CORRUPT_EXIF, UserWarning)
            return _metadata(img.getexif())
    except Exception:  # Pillow's EXIF parser raises many kinds on crafted data; none is fatal here
        return PhotoMetadata()


def _metadata(exif: Image.Exif) -> PhotoMetadata:
    ifd = exif.get_ifd(_EXIF_IFD)
    return PhotoMetadata(
        taken_at=_taken_at(ifd),
        camera=_joined(exif.get(_MAKE), exif.get(_MODEL)),
        lens=_joined(ifd.get(_LENS_MAKE), ifd.get(_LENS_MODEL)),
        gps=_gps(exif),
    )


def pixel_count(source: Path | BinaryIO | bytes) -> int:
    """Width x height from the header alone (0 if unreadable; the decode then says why): what a
    decode will cost, in pixels of about 4 bytes. A file object is left at its start."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                width, height = img.size
    except Exception:  # any unreadable header is the decode's to report
        return 0
    finally:
        if not isinstance(stream, Path):
            stream.seek(0)
    return width * height


def check_header(source: Path, *, max_pixels: int) -> None:
    """Check format and size from the header alone (cheap), before a reduced-scale decode."""
    with _readable_image(source, max_pixels):
        pass


def thumbnail(decoded: DecodedImage, longest_side: int) -> bytes:
    """A JPEG no larger than `longest_side`, without any metadata (so no location either)."""
    img = decoded.image
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        img = flat
    elif img.mode != "RGB":
        img = img.convert("RGB")
    # resize makes a new, small image; Image.thumbnail would need a full-size copy first (the
    # decoded image serves both sizes). reducing_gap: a cheap box reduction, then Lanczos.
    width, height = img.size
    scale = longest_side / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue()


def face_crop(
    thumb: bytes, box: tuple[int, int, int, int], original_size: tuple[int, int], side: int = 128
) -> bytes:
    """A square JPEG of `side` pixels around `box` (left, top, right, bottom in the upright
    original's pixels), cut from a thumbnail of that original (`thumb`, a JPEG we made)."""
    with Image.open(io.BytesIO(thumb)) as img:
        img.load()
        sx, sy = img.width / original_size[0], img.height / original_size[1]
        left, top, right, bottom = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        # A little of what is around the face, as a square, within the picture.
        half = max(right - left, bottom - top) * 0.65
        cx, cy = (left + right) / 2, (top + bottom) / 2
        square = (
            max(0, round(cx - half)),
            max(0, round(cy - half)),
            min(img.width, round(cx + half)),
            min(img.height, round(cy + half)),
        )
        if square[2] <= square[0] or square[3] <= square[1]:
            raise ValueError(f"the box {box} is outside the picture")
        face = img.convert("RGB").crop(square)
    face.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    face.save(out, "JPEG", quality=85)
    return out.getvalue()


def without_location(data: bytes, *, max_pixels: int) -> bytes | None:
    """The image again, upright and without any metadata, when its file may say where it was
    taken (EXIF GPS, XMP, or the second pictures of an MPO); None when it says nothing of the
    kind and may be shared as it is (its bytes, so its content hash, unchanged)."""
    with _readable_image(io.BytesIO(data), max_pixels) as img:
        has_gps = bool(img.getexif().get_ifd(_GPS_IFD))
        has_xmp = any("xmp" in str(key).lower() for key in img.info)
        if not (has_gps or has_xmp or img.format == "MPO"):
            return None
        fmt = ACCEPTED_FORMATS[str(img.format)]
        img.load()
        upright = ImageOps.exif_transpose(img)  # the orientation goes with the rest of the EXIF
        icc = img.info.get("icc_profile")  # colours, not places: kept
        upright.info = {}  # no writer may copy the EXIF or XMP over from here
        out = io.BytesIO()
        if fmt == "png":
            upright.save(out, "PNG", optimize=False, icc_profile=icc)
        elif fmt == "webp":
            upright.save(out, "WEBP", quality=95, icc_profile=icc)
        else:  # JPEG (GIF has no EXIF: never here)
            rgb = upright if upright.mode in ("RGB", "L", "CMYK") else upright.convert("RGB")
            rgb.save(out, "JPEG", quality=95, icc_profile=icc)
        return out.getvalue()


def safe_filename(name: str | None, limit: int = 255) -> str:
    """The last component of a client's file name, printable and bounded; display only, never a path."""
    if not name:
        return ""
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    return base.strip().lstrip(".")[:limit]


def _taken_at(ifd: dict[int, object]) -> datetime | None:
    """When the camera took it, in UTC. DateTimeOriginal is the camera's local time; its zone is
    OffsetTimeOriginal ("+02:00") when the camera wrote one, else unknown, and the local time is
    kept as if it were UTC (off by the zone, but the right day and hour on the camera's clock)."""
    raw = _text(ifd.get(_DATETIME_ORIGINAL), 32)
    try:
        local = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = _text(ifd.get(_OFFSET_TIME_ORIGINAL, ""), 16)
    try:
        taken = local.replace(tzinfo=datetime.strptime(offset, "%z").tzinfo).astimezone(UTC)
    except (ValueError, OverflowError):  # no zone, a bad one, or one that leaves year 1..9999
        taken = local.replace(tzinfo=UTC)
    return plausible_date(taken)


def plausible_date(taken: datetime) -> datetime | None:
    """`taken` (aware) if a camera can have taken a photo then, else None."""
    return taken if _EARLIEST_TAKEN <= taken <= datetime.now(UTC) + timedelta(days=1) else None


def _joined(*values: object) -> str:
    """Make and model as one name ("Canon Canon EOS R5" stays as the camera wrote it)."""
    parts = [_text(v, MAX_EXIF_TEXT) for v in values]
    return " ".join(p for p in parts if p)[:MAX_EXIF_TEXT]


def _text(value: object, limit: int) -> str:
    """An EXIF string as printable text of at most `limit` characters ("" for anything else)."""
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return ""
    value = unicodedata.normalize("NFC", value[: limit * 4])
    # Control characters (NULs padding a field, escapes, line breaks) would only garble a page.
    printable = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in value)
    return " ".join(printable.split())[:limit]


def _gps(exif: Image.Exif) -> GPS | None:
    gps = exif.get_ifd(_GPS_IFD)
    try:
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return GPS(lat, lon)


def _degrees(dms: tuple[float, float, float], ref: str, negative_ref: str) -> float:
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    return -value if str(ref).strip("\x00 ").upper() == negative_ref else value
