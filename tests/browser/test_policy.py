"""The security policy in a real browser: Chromium enforces the CSP, and everything still works."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CALTECH

PHOTO = sorted((CALTECH / "Leopards").iterdir())[0]


@pytest.mark.browser
def test_docs_and_pages_work_in_a_browser_under_the_policy(page: Page, live_server: str) -> None:
    """Chromium enforces the policy: Swagger UI renders and calls the API with nothing from
    another host, and the pages' own behaviour (a confirmation before deleting) still works."""
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: blocked.append(str(e)))
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live_server) else elsewhere.append(r.url))

    page.goto(live_server + "/docs")
    operation = page.locator("#operations-default-list_photos_api_v1_photos_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table .response .response-col_status")).to_have_text("200")

    page.goto(live_server + "/signup")
    page.fill("input[name=username]", "petra")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    with page.expect_file_chooser() as chooser:
        page.click("#drop")
    chooser.value.set_files([str(PHOTO)])
    page.locator("#queue li.done a").click()
    expect(page).to_have_url(re.compile(r"/photos/[\w-]{22}$"))
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("details.edit summary")
    page.click("button.danger")
    page.wait_for_timeout(300)
    assert asked == ["Delete this photo for good?"]
    expect(page).to_have_url(re.compile(r"/photos/[\w-]{22}$"))  # dismissed: still there

    assert blocked == [] and elsewhere == []
