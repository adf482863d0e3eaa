"""Moderation in real Chromium: a member reports a photo from its page, an administrator hides
it from the queue, and it is gone for everybody else; a sensitive photo is blurred until clicked."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import CALTECH
from tests.standin_sensitive import red_image

pytestmark = pytest.mark.browser

PHOTO = min((CALTECH / "sunflower").iterdir())


def _sign_up(page: Page, base: str, name: str, path: str = "/signup") -> None:
    page.goto(base + path)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/upload")


def _upload(page: Page, base: str, files: list[Path]) -> None:
    page.goto(base + "/upload")
    page.set_input_files("#files", [str(f) for f in files])
    expect(page.locator("#queue li.done")).to_have_count(len(files), timeout=30_000)


def test_a_reported_photo_is_hidden_from_the_queue_and_sensitive_ones_are_blurred(
    browser: Browser, page: Page, live_server: str, setup_path: str, tmp_path: Path
) -> None:
    _sign_up(page, live_server, "ada", setup_path)  # the administrator
    owner = browser.new_context().new_page()
    _sign_up(owner, live_server, "owner")
    _upload(owner, live_server, [PHOTO, red_image(tmp_path / "red.jpg")])
    member = browser.new_context().new_page()
    _sign_up(member, live_server, "member")

    # The member sees one photo blurred (the stand-in model scores the red one sensitive).
    member.goto(live_server + "/")
    expect(member.locator(".grid .card")).to_have_count(2)
    blurred = member.locator(".grid .card.blurred")
    expect(blurred).to_have_count(1)
    assert "blur" in blurred.locator("img").evaluate("img => getComputedStyle(img).filter")
    blurred.click()
    figure = member.locator("#sensitive-figure")
    expect(figure).to_have_class("blurred")
    member.click("button[data-reveal]")
    expect(figure).not_to_have_class("blurred")
    assert figure.locator("img").evaluate("img => getComputedStyle(img).filter") == "none"

    # ... and reports the other one from its page.
    member.goto(live_server + "/")
    member.locator(".grid .card:not(.blurred)").click()
    photo_url = member.url
    member.click("details.report summary")
    member.select_option("#report-form select[name=reason]", "copyright")
    member.fill("#report-form textarea[name=note]", "this is my photo")
    member.click("#report-form button[type=submit]")
    expect(member.locator("#reported")).to_be_visible()

    # The administrator finds it in the queue and hides it.
    page.goto(live_server + "/")
    page.click("header a:has-text('Moderation')")
    item = page.locator(".moderation-item", has_text="this is my photo")
    expect(item).to_have_count(1)
    item.locator("input[name=reason]").fill("reported as someone else's")
    item.locator("button:has-text('Hide')").click()
    expect(page.locator(".moderation-item", has_text="this is my photo")).to_have_count(0)

    # Gone for the member, from the feed and at its address; the owner sees why.
    member.goto(live_server + "/")
    expect(member.locator(".grid .card")).to_have_count(1)
    response = member.goto(photo_url)
    assert response is not None and response.status == 404
    owner.goto(photo_url)
    expect(owner.locator("#hidden-notice")).to_be_visible()
    expect(owner.locator(".notice-from-admin")).to_contain_text("reported as someone else's")
    owner.click(".notice-from-admin button:has-text('Dismiss')")
    expect(owner.locator(".notice-from-admin")).to_have_count(0)
