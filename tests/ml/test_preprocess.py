"""Preprocessing: every image mode becomes the same well-formed input, and big JPEGs decode small."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from eyes.ml.preprocess import IMAGE_SIZE, RESIZE_SIZE, open_for_model, preprocess, preprocess_batch, to_rgb


def encode(img: Image.Image, fmt: str, **kwargs: object) -> io.BytesIO:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    out.seek(0)
    return out


def assert_model_input(x: np.ndarray) -> None:
    assert x.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    assert np.isfinite(x).all() and x.min() >= -1.0 and x.max() <= 1.0


def test_rgb_photo_is_scaled_to_minus_one_one() -> None:
    x = preprocess(Image.fromarray(data.chelsea()))
    assert_model_input(x)
    assert x.min() < -0.5 and x.max() > 0.5  # a real photo uses most of the range


def test_white_and_black_map_to_the_ends_of_the_range() -> None:
    assert np.all(preprocess(Image.new("RGB", (300, 300), (255, 255, 255))) == 1.0)
    assert np.all(preprocess(Image.new("RGB", (300, 300), (0, 0, 0))) == -1.0)


def test_one_pixel_image() -> None:
    x = preprocess(Image.new("RGB", (1, 1), (255, 0, 0)))
    assert_model_input(x)
    assert np.allclose(x[0], 1.0) and np.allclose(x[1:], -1.0)


@pytest.mark.parametrize("size", [(1000, 300), (300, 1000), (257, 256), (50, 3000)])
def test_short_side_resized_to_256_then_centre_cropped(size: tuple[int, int]) -> None:
    # Left half black, right half white: a centred crop keeps the boundary in the middle.
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[:, size[0] // 2 :] = 255
    x = preprocess(Image.fromarray(pixels))
    assert_model_input(x)
    if size[0] >= size[1]:
        row = x[0, IMAGE_SIZE // 2]
        assert row[: IMAGE_SIZE // 2 - 2].max() < -0.9 and row[IMAGE_SIZE // 2 + 2 :].min() > 0.9


def test_greyscale_becomes_three_equal_channels() -> None:
    x = preprocess(Image.fromarray(data.camera()))
    assert_model_input(x)
    assert np.array_equal(x[0], x[1]) and np.array_equal(x[1], x[2])


def test_sixteen_bit_png_is_rescaled_not_clipped_to_white() -> None:
    # Three vertical bands: black, mid grey and white in 16 bits.
    pixels = np.zeros((300, 300), dtype=np.uint16)
    pixels[:, 100:200] = 32768
    pixels[:, 200:] = 65535
    img = Image.open(encode(Image.fromarray(pixels), "PNG"))
    assert img.mode.startswith("I")
    x = preprocess(img)
    assert_model_input(x)
    middle = x[0, IMAGE_SIZE // 2]
    assert middle[0] == -1.0 and abs(float(middle[IMAGE_SIZE // 2])) < 0.01 and middle[-1] == 1.0


def test_float_image_in_zero_one() -> None:
    x = preprocess(Image.fromarray(np.full((50, 50), 0.5, dtype=np.float32), "F"))
    assert np.allclose(x, 0.0, atol=0.01)  # mid grey


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (320, 240), (0, 255, 255, 0))  # pure red in CMYK
    img = Image.open(encode(cmyk, "JPEG", quality=95))
    assert img.mode == "CMYK"
    x = preprocess(img)
    assert_model_input(x)
    assert x[0].mean() > 0.8 and x[1].mean() < -0.8 and x[2].mean() < -0.8


def test_rgba_composited_on_white() -> None:
    img = Image.new("RGBA", (300, 300), (255, 0, 0, 0))  # fully transparent red
    img.paste((0, 0, 255, 255), (0, 0, 300, 150))  # opaque blue top half
    x = preprocess(img)
    assert_model_input(x)
    assert np.allclose(x[:, -1, :], 1.0)  # transparent bottom: white, not red or black
    assert np.allclose(x[:, 0, :], [[-1.0], [-1.0], [1.0]])


def test_la_and_palette_with_transparency() -> None:
    la = Image.new("LA", (64, 64), (0, 0))
    assert np.allclose(preprocess(la), 1.0)
    palette = Image.new("P", (64, 64), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert np.allclose(preprocess(palette), 1.0)
    assert to_rgb(palette).mode == "RGB"


@pytest.mark.parametrize(
    "mode", ["1", "L", "P", "I", "I;16", "F", "YCbCr", "LAB", "HSV", "RGBX", "La", "RGBa", "PA"]
)
def test_every_mode_gives_model_input(mode: str) -> None:
    img = Image.fromarray(data.chelsea()).convert("RGB")
    try:
        img = img.convert(mode)
    except ValueError:
        img = Image.new(mode, (120, 80))
    assert_model_input(preprocess(img))


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (80, 60), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = open_for_model(gif)
    x = preprocess(img)
    assert_model_input(x)
    assert x[0].mean() > 0.9 and x[2].mean() < -0.9


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    jpeg = encode(Image.new("RGB", (600, 400), (10, 200, 10)), "JPEG", exif=exif)
    assert open_for_model(jpeg).size == (400, 600)


def test_large_jpeg_decodes_at_reduced_scale_keeping_short_side() -> None:
    big = Image.fromarray(data.chelsea()).resize((4000, 3000))
    img = open_for_model(encode(big, "JPEG", quality=85))
    assert img.size == (500, 375)  # 1/8 scale: the smallest that keeps both sides >= 256
    assert_model_input(preprocess(img))


def test_draft_never_goes_below_the_resize_size() -> None:
    # 1/2 scale would give 300x200: too small, so the JPEG decodes at full size.
    img = open_for_model(encode(Image.new("RGB", (600, 400), (1, 2, 3)), "JPEG"))
    assert min(img.size) >= RESIZE_SIZE and img.size == (600, 400)


def test_open_for_model_reads_a_path_and_leaves_no_file_open(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(data.coffee()).save(path)
    img = open_for_model(path)
    path.unlink()  # the image must not depend on the file any more
    assert img.size == (600, 400)
    assert_model_input(preprocess(img))


def test_preprocess_batch() -> None:
    batch = preprocess_batch([Image.new("RGB", (10, 20)), Image.new("L", (300, 200))])
    assert batch.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE) and batch.dtype == np.float32
    assert preprocess_batch([]).shape == (0, 3, IMAGE_SIZE, IMAGE_SIZE)
