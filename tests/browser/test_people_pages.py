"""People in real Chromium: the owner names a group on the People page, merges another group
into that person, marks a face as not a face, and sees `person:anna` on a photo and in search;
another signed-in user sees none of it until she chooses him."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from eyes.config import Settings
from tests.standin_faces import SPEC, faces_image

pytestmark = pytest.mark.browser

ANNA, BORIS, CLARA = 1, 2, 3  # stand-in persons (tests/standin_faces.py)
PHOTOS = [[ANNA, BORIS], [ANNA, BORIS], [ANNA, CLARA], [CLARA]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"faces": True, "faces_finder": SPEC})


def sign_up(page: Page, live_server: str, name: str) -> None:
    page.goto(live_server + "/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "a long password")
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server + "/upload")


def faces_by_photo(page: Page, live_server: str, expected: int) -> dict[str, list[int]]:
    """The owner's face ids by photo, left to right, once the tagging jobs found them all."""
    found: list[dict[str, int | str]] = []
    for _ in range(150):
        found = page.request.get(live_server + "/api/v1/me/faces").json()
        if len(found) == expected:
            break
        page.wait_for_timeout(100)
    assert len(found) == expected
    by_photo: dict[str, list[tuple[int, int, int]]] = {}
    for f in found:
        by_photo.setdefault(str(f["photo"]), []).append((int(f["top"]), int(f["left"]), int(f["id"])))
    return {photo: [i for _, _, i in sorted(faces)] for photo, faces in by_photo.items()}


def group_holding(page: Page, face: int):  # type: ignore[no-untyped-def]
    return page.locator("article.face-group").filter(has=page.locator(f"li[data-face='{face}']"))


def test_owner_names_merges_and_corrects_people_and_only_she_sees_them(
    page: Page, browser: Browser, live_server: str, tmp_path: Path
) -> None:
    sign_up(page, live_server, "rosa")
    page.goto(live_server + "/settings")
    page.locator("#faces-enabled").check()
    page.locator("form[action='/settings/faces'] button").click()
    expect(page.locator("#faces-enabled")).to_be_checked()

    files = [
        faces_image(tmp_path / f"p{i}.png", len(who), seed=i, people=who) for i, who in enumerate(PHOTOS)
    ]
    page.goto(live_server + "/upload")
    page.set_input_files("#files", [str(f) for f in files])
    expect(page.locator("#queue li.done")).to_have_count(len(files), timeout=30_000)
    faces = faces_by_photo(page, live_server, expected=7)
    photos = sorted(faces, key=lambda p: min(faces[p]))  # in upload order
    anna = [faces[photos[i]][0] for i in range(3)]
    boris = [faces[photos[i]][1] for i in range(2)]
    clara = [faces[photos[2]][1], faces[photos[3]][0]]

    # The People page, from the menu: three groups, each face a picture that loads.
    page.goto(live_server + "/")
    page.click("#nav-people")
    expect(page).to_have_url(live_server + "/people")
    expect(page.locator("article.face-group")).to_have_count(3)
    expect(group_holding(page, anna[0]).locator("li.face")).to_have_count(3)
    picture = group_holding(page, anna[0]).locator("img").first
    expect(picture).to_have_js_property("complete", True)
    assert picture.evaluate("img => img.naturalWidth") > 0, "the face's picture loads"

    # Name Anna's group.
    anna_group = group_holding(page, anna[0])
    anna_group.locator("input[name=name]").fill("Anna")
    anna_group.locator("form.name-form button").click()
    expect(page).to_have_url(live_server + "/people")
    expect(page.locator("#people .person-name")).to_have_text(["Anna"])
    expect(page.locator("article.face-group")).to_have_count(2)

    # Clara's group is Anna too: merge it into her.
    clara_group = group_holding(page, clara[0])
    clara_group.locator("select[name=into]").select_option(label="Anna")
    clara_group.locator("form.merge-form button").click()
    expect(page.locator("article.face-group")).to_have_count(1)
    expect(page.locator("#people li.person")).to_contain_text("4 photos")

    # One of Boris's faces is no face: his group of two is a face alone now.
    group_holding(page, boris[0]).locator(f"li[data-face='{boris[0]}'] button.not-a-face").click()
    expect(page.locator("article.face-group")).to_have_count(0)
    expect(page.locator("#singles li.face")).to_have_count(1)
    expect(page.locator("#not-faces")).to_have_text("1 marked as not a face.")

    # The photo of Clara's face alone now says person:anna, and search finds all four.
    photo_url = f"{live_server}/photos/{photos[3]}"
    page.goto(photo_url)
    expect(page.locator("#people-tags .tag")).to_have_text(["person:anna"])
    page.fill("header input[name=q]", "person:anna")
    page.press("header input[name=q]", "Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=person%3Aanna"))
    expect(page.locator(".grid > li")).to_have_count(4)

    # Her person page lists the four photos.
    page.goto(live_server + "/people")
    page.locator("#people li.person a").click()
    expect(page.locator("#person-name")).to_have_text("Anna")
    expect(page.locator(".grid > li")).to_have_count(4)

    # Another signed-in user sees the photo, but nobody in it, and finds nothing.
    other = browser.new_context()
    try:
        max_page = other.new_page()
        max_page.set_default_timeout(15_000)
        sign_up(max_page, live_server, "max")
        max_page.goto(photo_url)
        expect(max_page.locator("h1")).to_be_visible()
        expect(max_page.locator("#people-tags")).to_have_count(0)
        expect(max_page.locator("body")).not_to_contain_text("person:anna")
        max_page.goto(live_server + "/search?q=person%3Aanna")
        expect(max_page.locator(".grid > li")).to_have_count(0)
        expect(max_page.locator("#nav-people")).to_have_count(0)
        assert max_page.request.get(f"{live_server}/people/faces/{anna[0]}.jpg").status == 404

        # Until Rosa chooses him on Anna's page.
        page.locator("#audience input[value=chosen]").check()
        page.fill("#viewers", "max")
        page.click("#save-audience")
        expect(page.locator("#audience input[value=chosen]")).to_be_checked()
        expect(page.locator("#viewers")).to_have_value("max")
        max_page.goto(photo_url)
        expect(max_page.locator("#people-tags .tag")).to_have_text(["person:anna"])
        max_page.goto(live_server + "/search?q=person%3Aanna")
        expect(max_page.locator(".grid > li")).to_have_count(4)
    finally:
        other.close()
