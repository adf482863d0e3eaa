"""Faces as their owner meets them, in real Chromium: opt in on the settings page, upload, see
the count on the photo page; signed out, nothing about faces shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from eyes.config import Settings
from tests.standin_faces import SPEC, faces_image

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"faces": True, "faces_finder": SPEC})


def test_owner_turns_faces_on_and_sees_the_count_only_she_sees(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    page.goto(live_server + "/signup")
    page.fill("input[name=username]", "rosa")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server + "/upload")

    page.goto(live_server + "/settings")
    box = page.locator("#faces-enabled")
    expect(box).not_to_be_checked()
    box.check()
    page.locator("form[action='/settings/faces'] button").click()
    expect(page.locator("#faces-enabled")).to_be_checked()

    page.goto(live_server + "/upload")
    page.set_input_files("#files", str(faces_image(tmp_path / "three.png", 3)))
    expect(page.locator("#queue li.done")).to_have_count(1, timeout=30_000)
    found: list[dict[str, object]] = []
    for _ in range(100):  # the tagging job finds them off the request path
        found = page.request.get(live_server + "/api/v1/me/faces").json()
        if found:
            break
        page.wait_for_timeout(100)
    assert len(found) == 3
    photo_url = f"{live_server}/photos/{found[0]['photo']}"
    page.goto(photo_url)
    expect(page.locator("#face-count")).to_have_text("3 faces (only you see this)")

    page.click("header button:has-text('Log out')")
    expect(page.locator("header")).to_contain_text("Log in")
    page.goto(photo_url)
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("#face-count")).to_have_count(0)
