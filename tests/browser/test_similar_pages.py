"""Near-duplicates and "more like this" as a person meets them, in real Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.test_similar import copy_of, photos_of

pytestmark = pytest.mark.browser


def test_upload_says_near_duplicate_and_photo_page_shows_more_like_this(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    page.goto(live_server + "/signup")
    page.fill("input[name=username]", "rosa")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server + "/upload")

    original, other = photos_of("hawksbill", 1)[0], photos_of("chandelier", 1)[0]
    page.set_input_files("#files", [str(original), str(other)])
    expect(page.locator("#queue li.done")).to_have_count(2, timeout=30_000)
    expect(page.locator("#queue .near-duplicates")).to_have_count(0)

    page.set_input_files("#files", str(copy_of(original, tmp_path)))
    expect(page.locator("#queue li.done")).to_have_count(3, timeout=30_000)
    note = page.locator("#queue li").nth(2).locator(".near-duplicates")
    expect(note).to_contain_text("near-duplicate of your")
    note.locator("a").click()  # the photo it duplicates
    expect(page.locator(".similar h2")).to_have_text("More like this")
    expect(page.locator(".similar .grid .card")).to_have_count(2)  # the copy and the other photo
    expect(page.locator(".near-duplicates")).to_contain_text("only you see this")

    photo_url = page.url
    page.click("header button:has-text('Log out')")
    expect(page.locator("header")).to_contain_text("Log in")
    page.goto(photo_url)
    expect(page.locator(".near-duplicates")).to_have_count(0)
    expect(page.locator(".similar .grid .card")).to_have_count(2)
