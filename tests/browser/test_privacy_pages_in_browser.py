"""The privacy notice, the reader's consent history and the erasure of their page views,
in Chromium: accessible, readable at 320 px, and the erasure really empties their rows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browsing import ARTICLE, DESKTOP, PHONE, Reader, axe_report, no_horizontal_scroll

pytestmark = pytest.mark.browser

PAGES = ["/privacy", "/consent/history", "/consent"]
WIDTHS = {"desktop": DESKTOP, "320px": PHONE}


def accept_all(reader: Reader) -> None:
    reader.page.goto(ARTICLE)
    reader.page.get_by_role("button", name="Accept All").click()
    expect(reader.page.locator("#consent-banner")).to_have_count(0)
    reader.settle()


@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
def test_the_privacy_pages_pass_axe_and_fit_a_narrow_screen(open_reader, width) -> None:
    reader = open_reader(viewport=WIDTHS[width])
    accept_all(reader)
    problems = {}
    for path in PAGES:
        reader.page.goto(path)
        reader.settle()
        report = axe_report(reader.page)
        if report or not no_horizontal_scroll(reader.page):
            problems[path] = report or "scrolls sideways"
    assert problems == {}


def test_the_history_shows_the_choice_just_made(open_reader) -> None:
    reader = open_reader(viewport=DESKTOP)
    accept_all(reader)
    reader.page.goto("/consent")
    consent_id = reader.page.locator(".consent-id code").inner_text()
    reader.page.get_by_role("link", name="See every choice recorded for your consent ID").click()
    expect(reader.page.get_by_role("heading", name="Your consent history")).to_be_visible()
    expect(reader.page.locator("main")).to_contain_text(consent_id)
    expect(reader.page.locator(".history-table tbody tr")).to_have_count(1)


def test_erasing_from_cookie_settings_deletes_the_readers_page_views(
    open_reader, count_rows
) -> None:
    reader = open_reader(viewport=DESKTOP)
    accept_all(reader)
    expect(reader.page.locator("#page-views")).to_be_visible()
    value = next(c["value"] for c in reader.context.cookies() if c["name"] == "gu_reader")
    assert count_rows("page_view", reader=value) >= 1
    reader.page.goto("/consent")
    reader.page.get_by_role("button", name="Erase my page views").click()
    expect(reader.page.locator("#reading-data [role=status]")).to_contain_text("we deleted")
    assert count_rows("page_view", reader=value) == 0
    now = [c["value"] for c in reader.context.cookies() if c["name"] == "gu_reader"]
    assert value not in now, "the erased value must not come back"


@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
def test_the_banner_and_the_dialog_show_the_terms_and_both_links_on_screen(
    open_reader, width
) -> None:
    """Purposes, the third parties by name, how long a choice lasts, where to change it and both
    policies, at 1280 and 320 px. On a narrow screen the banner's notice scrolls within the
    banner (its height is capped so the story stays readable), so each part must come into
    view there while the buttons stay on screen."""
    page = open_reader(viewport=WIDTHS[width]).page
    page.goto(ARTICLE)
    banner = page.locator("#consent-banner")
    parts = [banner.get_by_text("182 days"), banner.get_by_text("Vidmoor")]
    parts += [banner.get_by_role("link", name=name) for name in ("Privacy policy", "Cookie policy")]
    for part in parts:
        part.scroll_into_view_if_needed()
        expect(part).to_be_in_viewport()
        expect(banner.get_by_role("button", name="Reject All")).to_be_in_viewport()
    page.get_by_role("link", name="Customize").click()
    dialog = page.get_by_role("dialog", name="Cookie settings")
    expect(dialog.get_by_text("182 days").first).to_be_visible()
    for name in ("Privacy policy", "Cookie policy"):
        expect(dialog.get_by_role("link", name=name).first).to_be_visible()
