"""Licences and the community's data set, as a person uses them in real Chromium."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CALTECH

pytestmark = pytest.mark.browser


def test_an_owner_opens_a_licence_and_an_administrator_downloads_the_data_set(
    page: Page, live_server: str, setup_path: str, tmp_path: Path
) -> None:
    page.goto(live_server + setup_path)
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")

    # A default licence on the settings page: the upload form starts with it.
    page.goto(live_server + "/settings")
    page.select_option("#default-license", "cc-by")
    page.click("form[action='/settings/license'] button[type=submit]")
    expect(page.locator("#default-license")).to_have_value("cc-by")
    page.goto(live_server + "/upload")
    expect(page.locator("#license")).to_have_value("cc-by")
    page.fill("#tags", "starfish")
    photos = sorted((CALTECH / "starfish").iterdir())[:2]
    page.set_input_files("#files", str(photos[0]))
    expect(page.locator("#queue li.done")).to_have_count(1, timeout=30_000)
    page.select_option("#license", "all-rights-reserved")  # the second keeps its rights
    page.set_input_files("#files", str(photos[1]))
    expect(page.locator("#queue li.done")).to_have_count(2, timeout=30_000)

    page.locator("#queue li.done a").first.click()
    expect(page.locator("#license")).to_have_text("CC BY 4.0 (attribution)")
    expect(page.locator("#license a")).to_have_attribute(
        "href", "https://creativecommons.org/licenses/by/4.0/"
    )
    first_url = page.url
    page.goto(live_server + "/")
    page.locator(".grid .card").first.click()  # the newest: all rights reserved
    expect(page.locator("#license")).to_have_text("All rights reserved")
    page.click("details.edit summary")
    page.select_option("#edit-license", "cc0")
    page.click("details.edit form >> button:has-text('Save')")
    expect(page.locator("#license")).to_have_text("CC0 1.0 (public domain)")
    page.click("details.edit summary")  # changes their mind
    page.select_option("#edit-license", "all-rights-reserved")
    page.click("details.edit form >> button:has-text('Save')")
    expect(page.locator("#license")).to_have_text("All rights reserved")

    page.goto(live_server + "/models")
    page.select_option("#dataset select[name=format]", "jsonl")
    with page.expect_download() as download:
        page.click("#download-dataset")
    assert re.match(r"eyes-dataset-\d{8}-\d{6}\.zip$", download.value.suggested_filename)
    saved = tmp_path / "dataset.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        (manifest,) = [n for n in archive.namelist() if n.endswith("/manifest.jsonl")]
        lines = [json.loads(line) for line in archive.read(manifest).decode().splitlines()]
    assert [line["photo"] for line in lines] == ["/photos/" + first_url.rsplit("/", 1)[1]]
    assert lines[0]["tags"] == ["starfish"] and lines[0]["author"] == "root"
