"""In real Chromium: a member takes the community's model away from its page; a photo's page
shows what its EXIF says, and the feed orders by date taken."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnxruntime as ort
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.conftest import CALTECH
from tests.images_for_tests import encode

pytestmark = pytest.mark.browser


def sign_up(page: Page, url: str, name: str) -> None:
    page.goto(url)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")


def test_a_member_downloads_the_model_and_its_card_from_the_model_page(
    page: Page, live_server: str, setup_path: str, tmp_path: Path
) -> None:
    import httpx2 as httpx

    sign_up(page, live_server + setup_path, "root")
    page.goto(live_server + "/settings")
    page.click("form.row button[type=submit]")
    token = page.locator("#new-token").inner_text()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        for cls in ("Leopards", "airplanes", "watch"):
            for path in sorted((CALTECH / cls).iterdir())[:6]:
                res = api.post(
                    "/api/v1/photos",
                    files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                    data={"tags": cls},
                )
                assert res.status_code == 201
    page.goto(live_server + "/models")
    page.click("#train")
    expect(page).to_have_url(re.compile(r"/models/v1$"))
    expect(page.locator("h1 .stage")).to_have_text("champion", timeout=60_000)

    card_link = page.locator("#model-card a", has_text="model card")
    expect(card_link).to_be_visible()
    with page.expect_download() as download:
        page.locator("#model-card a", has_text="one ONNX file").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "eyes-v1.onnx"
    session = ort.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])
    assert labels == ["airplanes", "leopards", "watch"]

    card_link.click()
    expect(page.locator("body")).to_contain_text("# Eyes model v1")
    expect(page.locator("body")).to_contain_text("## The promotion gate")

    page.goto(live_server + "/models/v1")
    page.click("header button:has-text('Log out')")
    page.goto(live_server + "/models/v1")
    expect(page.locator("#model-card")).to_contain_text("sign in to download the model itself")
    expect(page.locator("#model-card a", has_text="one ONNX file")).to_have_count(0)


def test_the_photo_page_shows_the_exif_and_the_feed_orders_by_date_taken(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    files = []
    for i, (date, lens) in enumerate(
        (("2011:04:05 06:07:08", "Old 50mm"), ("2009:01:01 12:00:00", "Older 28mm"))
    ):
        with Image.open(sorted((CALTECH / "sunflower").iterdir())[i]) as img:
            exif = Image.Exif()
            exif[0x010F], exif[0x0110] = "Leica", f"M{i + 6}"
            exif[0x8769] = {36867: date, 0xA434: lens}
            path = tmp_path / f"sunflower-{i}.jpg"
            path.write_bytes(encode(img.convert("RGB"), "JPEG", exif=exif))
            files.append(path)
    sign_up(page, live_server + "/signup", "lena")
    for path in files:  # one at a time: the second is the newest upload
        with page.expect_file_chooser() as chooser:
            page.click("#drop")
        chooser.value.set_files(str(path))
        expect(page.locator("#queue li.done")).to_have_count(files.index(path) + 1, timeout=30_000)

    page.goto(live_server + "/")
    expect(page.locator(".grid .card")).to_have_count(2)
    page.locator(".grid .card").first.click()  # the newest upload: the one taken in 2009
    expect(page.locator("#exif")).to_contain_text("2009-01-01 12:00")
    expect(page.locator("#exif")).to_contain_text("Leica M7")
    expect(page.locator("#exif")).to_contain_text("Older 28mm")

    page.goto(live_server + "/")
    page.click("#sort a:has-text('date taken')")
    expect(page).to_have_url(live_server + "/?sort=taken")
    expect(page.locator(".grid .card").first).to_contain_text("2011-04-05")
    expect(page.locator(".grid .card").nth(1)).to_contain_text("2009-01-01")
    page.click("#sort a:has-text('newest uploads')")
    expect(page.locator(".grid .card").first).to_have_attribute("href", re.compile(r"/photos/"))
    expect(page.locator(".grid .card time")).to_have_count(0)
