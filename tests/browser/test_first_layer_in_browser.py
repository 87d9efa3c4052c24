"""The banner's first layer in Chromium: short enough at 320 px that the story can still be read
above it, and, for a browser sending Global Privacy Control (the ``Sec-GPC: 1`` header and
``navigator.globalPrivacyControl``), saying in every edition that the opt-out request was
honoured and what it refused, with and without JavaScript."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.consent import GPC, in_edition
from tests.support.pages import (
    HALDBRUECK,
    HARROWMERE,
    KESSLING,
    LOVE_VALLEY,
    MORVELLE_STATION,
    NACHTZUG,
    NEWSROOMS,
)

from .browsing import DESKTOP, PHONE, Reader, axe_report
from .test_editions_in_browser import banner_button, said

ARTICLES = {
    "en": (HARROWMERE, KESSLING, NEWSROOMS),
    "de": (NACHTZUG, HALDBRUECK),
    "fr": (LOVE_VALLEY, MORVELLE_STATION),
}
SENDS_GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
# Where things are on the page, in CSS pixels from the top of the window.
POSITIONS = """() => {
  const box = selector => document.querySelector(selector).getBoundingClientRect();
  const banner = box('#consent-banner'), headline = box('.story h1');
  document.querySelector('.story-body > p').scrollIntoView({block: 'start'});
  const first = box('.story-body > p');
  return {banner_top: banner.top, banner_height: banner.height, headline_bottom: headline.bottom,
          paragraph_top: first.top, paragraph_bottom: first.bottom,
          banner_top_scrolled: box('#consent-banner').top};
}"""
# The advertisement category's title in each edition, as the GPC status names it.
ADVERTISEMENT = {"en": "Advertisement", "de": "Werbung", "fr": "Publicité"}


def gpc_reader(open_reader, **options) -> Reader:
    """A reader whose browser sends Global Privacy Control, as a browser with it switched on
    does: the header on every request and the property scripts read."""
    reader = open_reader(extra_http_headers=GPC, **options)
    reader.context.add_init_script(SENDS_GPC)
    return reader


def in_words(lang: str, message: str) -> str:
    """``message`` as the edition of ``lang`` shows it."""
    return message if lang == "en" else said(lang, message)


def assert_says_gpc_was_honoured(page: Page, part: str, lang: str) -> None:
    status = page.locator(f"{part} .consent-gpc")
    expect(status.locator(".gpc-honoured")).to_have_text(in_words(lang, "Opt-out request honored"))
    expect(status).to_contain_text(ADVERTISEMENT[lang])


@pytest.mark.parametrize("gpc", [False, True], ids=["plain", "gpc"])
@pytest.mark.parametrize("lang", ARTICLES)
def test_at_320_px_the_headline_and_the_first_paragraph_stay_readable_above_the_banner(
    open_reader, lang, gpc
) -> None:
    """On arrival the headline is wholly above the banner; scrolled to the top of the window,
    the story's first paragraph is wholly above it too, in every demo article."""
    reader = gpc_reader(open_reader, viewport=PHONE) if gpc else open_reader(viewport=PHONE)
    for path in ARTICLES[lang]:
        reader.page.goto(path)
        expect(reader.page.locator("#consent-banner")).to_be_visible()
        at = reader.page.evaluate(POSITIONS)
        measured = f"{path}: {at}"
        assert at["banner_height"] <= 0.5 * PHONE["height"], measured
        assert at["headline_bottom"] <= at["banner_top"], measured
        assert at["paragraph_top"] > -1, measured  # scrolled to the top, up to rounding
        assert at["paragraph_bottom"] <= at["banner_top_scrolled"], measured


@pytest.mark.parametrize("lang", ARTICLES)
def test_a_browser_sending_gpc_is_told_it_was_honoured_in_banner_dialog_and_settings(
    open_reader, lang
) -> None:
    reader = gpc_reader(open_reader)
    page = reader.page
    page.goto(ARTICLES[lang][0])
    assert page.evaluate("navigator.globalPrivacyControl") is True
    assert_says_gpc_was_honoured(page, "#consent-banner", lang)
    page.locator("#consent-banner .consent-customize").click()
    dialog = page.get_by_role("dialog", name=in_words(lang, "Cookie settings"))
    expect(dialog).to_be_visible()
    assert_says_gpc_was_honoured(page, ".consent-dialog", lang)
    expect(dialog.locator('input[name="advertisement"]')).not_to_be_checked()
    page.keyboard.press("Escape")
    with page.expect_navigation():
        banner_button(page, "accept_all").click()
    expect(page.locator("#consent-banner")).to_have_count(0)
    reader.settle()
    assert "advertisement" not in reader.running_categories()
    page.goto(in_edition("/consent", lang))
    assert_says_gpc_was_honoured(page, "article.preferences", lang)


def test_a_reader_without_the_signal_is_told_nothing_of_it(open_reader) -> None:
    page = open_reader().page
    for lang, articles in ARTICLES.items():
        page.goto(articles[0])
        expect(page.locator("#consent-banner")).to_be_visible()
        expect(page.locator(".consent-gpc")).to_have_count(0)
        page.goto(in_edition("/consent", lang))
        expect(page.locator(".consent-gpc")).to_have_count(0)


@pytest.mark.parametrize("lang", ARTICLES)
def test_without_javascript_the_gpc_status_shows_in_the_banner_and_settings(
    open_reader, lang
) -> None:
    page = gpc_reader(open_reader, java_script_enabled=False).page
    page.goto(ARTICLES[lang][0])
    assert_says_gpc_was_honoured(page, "#consent-banner", lang)
    page.locator("#consent-banner .consent-customize").click()
    assert_says_gpc_was_honoured(page, "article.preferences", lang)


def test_a_grant_revised_by_gpc_is_in_the_readers_history(open_reader) -> None:
    """Accept All without the signal, then the same browser starts sending it: the next page
    applies the opt-out, Cookie settings say so, and the history lists the opt-out record."""
    reader = open_reader()
    page = reader.page
    page.goto(HARROWMERE)
    with page.expect_navigation():
        banner_button(page, "accept_all").click()
    reader.context.set_extra_http_headers(GPC)
    reader.context.add_init_script(SENDS_GPC)
    page.goto("/consent")
    assert_says_gpc_was_honoured(page, "article.preferences", "en")
    page.goto("/consent/history")
    newest = page.locator(".history-table tbody tr").first
    expect(newest.locator('td[data-label="Action"]')).to_have_text("Global Privacy Control opt-out")
    expect(newest.locator('td[data-label="Global Privacy Control"]')).to_have_text("sent")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "320px"])
def test_axe_finds_no_violation_in_the_gpc_status(open_reader, viewport) -> None:
    page = gpc_reader(open_reader, viewport=viewport).page
    for lang, articles in ARTICLES.items():
        for path in (articles[0], in_edition("/consent", lang)):
            page.goto(path)
            expect(page.locator(".consent-gpc")).to_be_visible()
            assert axe_report(page) == "", path
