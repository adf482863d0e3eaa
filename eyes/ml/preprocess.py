"""Turn a decoded image into the backbone's input: numpy and Pillow only, never torch.

The pretrained EfficientNet-Lite expects RGB, a bicubic resize of the short side to 256, a centre
crop of 224 and pixel values scaled to [-1, 1] ((x / 255 - 0.5) / 0.5). The usual ImageNet
mean/std is noticeably worse for these weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

IMAGE_SIZE = 224
RESIZE_SIZE = 256
MEAN = 0.5
STD = 0.5
DESCRIPTION = (
    "RGB (alpha composited on white), bicubic resize of the short side to 256, centre crop 224x224, "
    "(x / 255 - 0.5) / 0.5, channels first (3, 224, 224) float32"
)

_BACKGROUND = (255, 255, 255)
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"}  # modes Image.reduce takes


def open_for_model(source: str | Path | BinaryIO) -> Image.Image:
    """Decode an image file for the model, as fast as its format allows.

    JPEGs decode at a reduced DCT scale (1/2, 1/4 or 1/8) that still keeps both sides at least
    256 pixels, which makes a 12-megapixel photo about 20 times cheaper to decode. EXIF
    orientation is applied, and an animated image gives its first frame. The file is read
    completely and closed (a file object passed in stays open).
    """
    with warnings.catch_warnings():
        # A broken EXIF block: Pillow warns and reads on, and so do we.
        warnings.filterwarnings("ignore", "Corrupt EXIF data", UserWarning)
        with Image.open(source) as img:
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            # draft() picks the smallest JPEG scale with both sides >= the size asked for; a no-op
            # for other formats. It must come before load().
            img.draft("RGB", (RESIZE_SIZE, RESIZE_SIZE))
            img.load()
            # In place: a copy of a large PNG (no reduced-scale decode) is hundreds of megabytes
            # more. The loaded pixels no longer depend on the file.
            ImageOps.exif_transpose(img, in_place=True)
            return img


def reduced_for_model(image: Image.Image) -> Image.Image:
    """A decoded image averaged down by whole blocks of pixels (what a JPEG's reduced-scale decode
    does) as long as both sides stay at least RESIZE_SIZE: from a photo decoded for its
    1,600-pixel thumbnail, the network's resize then costs what it costs from a small one. The
    image itself when it is small already (or of a mode Pillow cannot reduce)."""
    factor = min(image.size) // RESIZE_SIZE
    return image.reduce(factor) if factor > 1 and image.mode in _REDUCIBLE else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: transparency composited on white, 16-bit and float rescaled."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # palette transparency becomes a real alpha channel
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Pillow converts premultiplied "La" only to "LA"; every other mode here goes straight to RGBA.
        rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        # CMYK, YCbCr, LAB, HSV, L, 1 and palettes all have a conversion to RGB in Pillow.
        image = image.convert("RGB")
    return image


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale as 8-bit "L".

    Pillow's own convert("L") clips these to 0..255, so a 16-bit photo would come out white.
    """
    pixels = np.asarray(image)
    if pixels.dtype.kind == "f":
        values = pixels.astype(np.float64)
        # Float images are usually 0..1; anything else is stretched to its own range.
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if low >= 0.0 and high <= 1.0:
            low, high = 0.0, 1.0
        scaled = (np.nan_to_num(values, nan=low) - low) / max(high - low, 1e-12) * 255.0
    else:
        values = pixels.astype(np.float64)
        high = float(values.max()) if values.size else 0.0
        # 16-bit data (the common case, also stored as mode "I" by PNG) maps 65535 to 255;
        # wider integers are stretched to their own maximum.
        scaled = values / 257.0 if high <= 65535 else values / high * 255.0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def resize_and_crop(image: Image.Image) -> Image.Image:
    """Bicubic resize of the short side to 256, then the centre 224x224 (torchvision's rounding)."""
    width, height = image.size
    if width <= height:
        size = (RESIZE_SIZE, max(1, int(RESIZE_SIZE * height / width)))
    else:
        size = (max(1, int(RESIZE_SIZE * width / height)), RESIZE_SIZE)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    left = int(round((size[0] - IMAGE_SIZE) / 2.0))
    top = int(round((size[1] - IMAGE_SIZE) / 2.0))
    return image.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))


def preprocess(image: Image.Image) -> np.ndarray:
    """One image as the backbone's input: float32 (3, 224, 224), values in [-1, 1]."""
    pixels = np.empty((3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    pixels[...] = np.asarray(resize_and_crop(to_rgb(image))).transpose(2, 0, 1)
    # In place, in float32: (x / 255 - MEAN) / STD without a float64 copy (five times faster).
    pixels *= np.float32(1.0 / (255.0 * STD))
    pixels -= np.float32(MEAN / STD)
    return pixels


def preprocess_batch(images: list[Image.Image]) -> np.ndarray:
    """Several images as one (N, 3, 224, 224) float32 batch."""
    if not images:
        return np.zeros((0, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    return np.stack([preprocess(image) for image in images])
