"""Albums in real Chromium: make one, fill it from the grid's selection, view it, share it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CALTECH

pytestmark = pytest.mark.browser

PHOTOS = [min((CALTECH / cls).iterdir()) for cls in ("starfish", "sunflower", "watch")]


def test_an_album_from_the_grid_selection(page: Page, live_server: str) -> None:
    page.goto(live_server + "/signup")
    page.fill("input[name=username]", "rosa")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    with page.expect_file_chooser() as chooser:
        page.click("#drop")
    chooser.value.set_files([str(p) for p in PHOTOS])
    expect(page.locator("#queue li.done")).to_have_count(3, timeout=30_000)

    # A new album from the profile page: empty, public, with its own page.
    page.goto(live_server + "/users/rosa")
    expect(page.locator("#albums")).to_contain_text("rosa has no albums to show.")
    page.click("details.new-album summary")
    page.fill("details.new-album input[name=title]", "Seaside")
    page.click("details.new-album button[type=submit]")
    expect(page).to_have_url(re.compile(r"/albums/[\w-]{22}$"))
    album_url = page.url
    expect(page.locator("h1")).to_have_text("Seaside")
    expect(page.locator("#photo-count")).to_have_text("0 photos")

    # Tick the first two photos of the grid and add them.
    page.goto(live_server + "/users/rosa")
    cards = page.locator(".grid:not(.albums) > li")
    expect(cards).to_have_count(3)
    boxes = [cards.nth(i).locator("input[type=checkbox]") for i in (0, 1)]
    first, second = (box.get_attribute("value") for box in boxes)
    for box in boxes:
        box.check()
    page.select_option("#album-select select[name=album]", label="Seaside")
    page.click("#album-select button[type=submit]")
    expect(page).to_have_url(album_url)
    expect(page.locator("#photo-count")).to_have_text("2 photos")
    shown = page.locator(".album-photos > li")
    expect(shown).to_have_count(2)
    # In the order they stand in the grid.
    assert [shown.nth(i).get_attribute("data-photo-id") for i in range(2)] == [first, second]
    expect(shown.first.locator("img")).to_have_js_property("complete", True)
    assert shown.first.locator("img").evaluate("img => img.naturalWidth") > 0, "the thumbnail loads"

    # The owner moves the second photo to the front; the album remembers.
    shown.nth(1).locator("button[title='Move earlier']").click()
    expect(page.locator(".album-photos > li").first).to_have_attribute("data-photo-id", second)

    # The profile lists the album with its cover, for a visitor too.
    page.context.clear_cookies()
    page.goto(live_server + "/users/rosa")
    album_card = page.locator("#albums .album-card")
    expect(album_card).to_contain_text("Seaside")
    expect(album_card).to_contain_text("2 photos")
    album_card.click()
    expect(page).to_have_url(album_url)
    expect(page.locator(".album-photos > li")).to_have_count(2)
    expect(page.locator(".album-tools")).to_have_count(0)
    page.locator(".album-photos > li a.card").first.click()
    expect(page).to_have_url(re.compile(rf"/photos/{second}$"))
    expect(page.locator("#photo-albums")).to_contain_text("Seaside")
