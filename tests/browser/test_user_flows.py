"""What a person does in the browser, end to end, in real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CALTECH
from tests.test_learning import assert_model_charts

pytestmark = pytest.mark.browser

PHOTOS = [min((CALTECH / "starfish").iterdir()), min((CALTECH / "sunflower").iterdir())]


def test_sign_up_upload_tag_share_and_log_out(page: Page, live_server: str) -> None:
    page.goto(live_server + "/signup")
    page.fill("input[name=username]", "petra")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server + "/upload")

    with page.expect_file_chooser() as chooser:
        page.click("#drop")
    chooser.value.set_files([str(p) for p in PHOTOS])
    expect(page.locator("#queue li.done")).to_have_count(2, timeout=30_000)
    expect(page.locator("#queue progress").first).to_have_attribute("value", "100")

    page.goto(live_server + "/")
    cards = page.locator(".grid .card")
    expect(cards).to_have_count(2)

    cards.first.click()  # the newest: the sunflower
    expect(page).to_have_url(re.compile(r"/photos/[\w-]{22}$"))
    photo_url = page.url
    # The network's suggestions appear without a reload; one click confirms one.
    suggestion = page.locator("#tags .tag-item.suggested").first
    expect(suggestion).to_be_visible(timeout=30_000)
    expect(suggestion.locator(".confidence")).to_have_text(re.compile(r"^\d+%$"))
    suggested_name = suggestion.get_attribute("data-tag")
    suggestion.locator("button.confirm").click()
    expect(page.locator(f'#tags .tag-item.confirmed[data-tag="{suggested_name}"]')).to_be_visible()
    page.fill("#new-tag", "Yellow Flower")
    page.click("form.row button[type=submit]")
    expect(page.locator("#tags .tag", has_text="yellow flower")).to_be_visible()

    page.click("#tags a.tag >> text=yellow flower")
    expect(page).to_have_url(live_server + "/tags/yellow%20flower")
    expect(page.locator(".grid .card")).to_have_count(1)
    page.locator(".grid .card").click()
    expect(page).to_have_url(photo_url)

    page.click("details.edit summary")
    page.select_option("details.edit select[name=visibility]", "private")
    page.click("details.edit form >> button:has-text('Save')")
    expect(page.locator(".byline .badge")).to_have_text("private")

    page.click("header button:has-text('Log out')")
    expect(page.locator("header")).to_contain_text("Log in")
    page.goto(live_server + "/")
    expect(page.locator(".grid .card")).to_have_count(1)
    response = page.goto(photo_url)
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")


def test_bad_file_shows_a_clear_error_in_the_upload_list(page: Page, live_server: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo")
    page.goto(live_server + "/signup")
    page.fill("input[name=username]", "quinn")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    page.set_input_files("#files", str(fake))
    expect(page.locator("#queue li.failed .status")).to_contain_text("not an image")


@pytest.mark.slow  # a promotion needs a model that learns: the real network
def test_admin_trains_a_model_from_the_dashboard(page: Page, live_server: str, setup_path: str) -> None:
    import httpx2 as httpx

    page.goto(live_server + setup_path)  # the operator opens the link the server printed
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    # Labelled photos through the API, as the owner's confirmed tags.
    page.goto(live_server + "/settings")
    page.click("form.row button[type=submit]")
    token = page.locator("#new-token").inner_text()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        for cls in ("Leopards", "airplanes", "watch"):
            for path in sorted((CALTECH / cls).iterdir())[:8]:
                res = api.post(
                    "/api/v1/photos",
                    files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                    data={"tags": cls},
                )
                assert res.status_code == 201

    page.goto(live_server + "/models")
    expect(page.locator("#champion")).to_contain_text("imagenet")
    page.click("#train")
    expect(page).to_have_url(re.compile(r"/models/v1$"))
    expect(page.locator("h1 .stage")).to_have_text("champion", timeout=60_000)
    expect(page.locator("#decision")).to_contain_text("promoted")
    marks = page.locator("svg.chart circle > title, svg.chart rect > title").all_text_contents()
    assert_model_charts(marks, ["airplanes", "leopards", "watch"])
    expect(page.locator("#how-trained")).to_contain_text("24 photos")
    expect(page.locator("#baseline")).to_contain_text("logistic regression on the frozen embeddings")
    page.goto(live_server + "/models")
    expect(page.locator("#champion")).to_have_text("v1")


def test_an_administrator_approves_a_new_class(page: Page, live_server: str, setup_path: str) -> None:
    import httpx2 as httpx

    for name in ("root", "member"):  # the administrator signs up with the setup link
        page.goto(live_server + (setup_path if name == "root" else "/signup"))
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", "a long password")
        page.click("button[type=submit]")
        if name == "root":
            page.context.clear_cookies()
    page.goto(live_server + "/settings")
    page.click("form[action='/settings/tokens'] button[type=submit]")
    token = page.locator("#new-token").inner_text()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        for path in sorted((CALTECH / "starfish").iterdir())[:3]:
            res = api.post(
                "/api/v1/photos",
                files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                data={"tags": "sea star"},
            )
            assert res.status_code == 201
    page.goto(live_server + "/models")
    assert page.locator("#vocabulary").count() == 0, "only administrators manage classes"

    page.context.clear_cookies()
    page.goto(live_server + "/login")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    page.goto(live_server + "/models")
    expect(page.locator("#vocabulary")).to_contain_text("sea star")
    page.click("#approve")
    expect(page.locator("#classes")).to_contain_text("sea star")
    expect(page.locator("#vocabulary")).to_contain_text("No tag waits for approval")
