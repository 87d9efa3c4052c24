"""The German and French editions in Chromium: the banner's journeys (accept, reject, customise,
withdraw) with and without JavaScript, axe at 1280 and 320 px with the banner and the dialog
open, long German words on a narrow screen, no layout shift, and the redirect of a German or
French browser that opens the bare address."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.translations import catalogue

from .browsing import DESKTOP, PHONE, Reader, axe_report, no_horizontal_scroll

pytestmark = pytest.mark.browser

EDITIONS = ("de", "fr")
WIDTHS = {"1280px": DESKTOP, "320px": PHONE}
EVERY_OPTIONAL = ["functional", "analytics", "performance", "advertisement"]


def said(lang: str, message: str) -> str:
    """What the page says for ``message`` in ``lang``, from the catalogue the site uses."""
    entry = catalogue(lang).get(message)
    assert entry is not None and entry.string, f"{message!r} has no {lang} translation"
    return str(entry.string)


def first_article(page: Page, lang: str) -> str:
    """The path of the newest story of the edition, as its front page links it."""
    page.goto(f"/{lang}/")
    href = page.locator(".article-list h2 a").first.get_attribute("href")
    assert href and href.startswith(f"/{lang}/articles/"), href
    return href


def banner_button(page: Page, action: str) -> Locator:
    return page.locator(f'#consent-banner button[value="{action}"]')


def open_dialog(page: Page, lang: str) -> Locator:
    page.locator("#consent-banner .consent-customize").click()
    dialog = page.get_by_role("dialog", name=said(lang, "Cookie settings"))
    expect(dialog).to_be_visible()
    return dialog


@pytest.mark.parametrize("lang", EDITIONS)
class TestWithJavaScript:
    def test_accept_all_runs_every_feature_and_the_page_stays_in_its_language(
        self, reader: Reader, lang: str
    ) -> None:
        page = reader.page
        article = first_article(page, lang)
        page.goto(article)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert reader.running_categories() == []
        with page.expect_navigation():
            banner_button(page, "accept_all").click()
        expect(page.locator("#page-views")).to_be_visible()
        expect(page.locator("#page-timing")).to_be_visible()
        assert page.url.endswith(article)
        assert sorted(reader.running_categories()) == sorted(EVERY_OPTIONAL)
        views = page.locator("#page-views").inner_text()
        timing = page.locator("#page-timing").inner_text()
        assert {"de": "gelesen", "fr": "Lu "}[lang] in views and "Read " not in views
        assert "loaded in" not in timing and " ms" in timing
        larger = said(lang, "Larger text")
        page.get_by_role("button", name=larger).click()
        expect(page.locator("html")).to_have_attribute("data-text-size", "large")
        assert reader.csp_violations() == []

    def test_reject_all_stays_on_the_page_and_says_so_in_its_language(
        self, reader: Reader, lang: str
    ) -> None:
        page = reader.page
        page.goto(f"/{lang}/cookie-policy")
        reader.settle()
        reader.mark_document()
        banner_button(page, "reject_all").click()
        expect(page.locator("#consent-banner")).to_have_count(0)
        expect(page.get_by_role("status")).to_have_text(
            said(lang, "Your cookie choices are saved.")
        )
        assert reader.same_document()
        assert reader.running_categories() == [] and reader.optional_cookies() == set()

    def test_customise_then_withdraw_in_the_dialog(self, reader: Reader, lang: str) -> None:
        page = reader.page
        article = first_article(page, lang)
        page.goto(article)
        dialog = open_dialog(page, lang)
        expect(dialog.get_by_role("button", name=said(lang, "Close"))).to_be_visible()
        dialog.locator('input[name="analytics"]').check()
        with page.expect_navigation():
            dialog.locator('button[value="save"]').click()
        expect(page.locator("#page-views")).to_be_visible()
        assert reader.running_categories() == ["analytics"]

        page.get_by_role("link", name=said(lang, "Cookie settings")).click()
        dialog = page.get_by_role("dialog", name=said(lang, "Cookie settings"))
        analytics = dialog.locator('input[name="analytics"]')
        expect(analytics).to_be_checked()
        analytics.uncheck()
        with page.expect_navigation():
            dialog.locator('button[value="save"]').click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert reader.running_categories() == []
        assert "gu_reader" not in reader.optional_cookies()


@pytest.mark.parametrize("lang", EDITIONS)
class TestWithoutJavaScript:
    @pytest.fixture
    def reader(self, open_reader) -> Reader:
        return open_reader(java_script_enabled=False)

    @pytest.mark.parametrize("action", ["accept_all", "reject_all"])
    def test_a_choice_in_the_banner_returns_to_the_same_page(
        self, reader: Reader, lang: str, action: str
    ) -> None:
        page = reader.page
        article = first_article(page, lang)
        page.goto(article)
        with page.expect_navigation():
            banner_button(page, action).click()
        assert page.url.endswith(article)
        expect(page.locator("#consent-banner")).to_have_count(0)
        expected = EVERY_OPTIONAL if action == "accept_all" else []
        assert sorted(reader.running_categories()) == sorted(expected)

    def test_customise_then_withdraw_on_the_preferences_page(
        self, reader: Reader, lang: str
    ) -> None:
        page = reader.page
        article = first_article(page, lang)
        page.goto(article)
        page.locator("#consent-banner .consent-customize").click()
        assert f"/{lang}/consent?next=" in page.url
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.locator('input[name="analytics"]').check()
        page.locator('button[value="save"]').click()
        page.wait_for_url(f"**{article}")
        assert reader.running_categories() == ["analytics"]

        page.get_by_role("link", name=said(lang, "Cookie settings")).click()
        assert f"/{lang}/consent" in page.url
        analytics = page.locator('input[name="analytics"]')
        expect(analytics).to_be_checked()
        analytics.uncheck()
        page.locator('button[value="save"]').click()
        page.wait_for_url(f"**{article}")
        assert reader.running_categories() == []


@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
@pytest.mark.parametrize("lang", EDITIONS)
def test_axe_finds_no_violation_on_the_editions_pages(open_reader, lang: str, width: str) -> None:
    reader = open_reader(viewport=WIDTHS[width])
    page = reader.page
    article = first_article(page, lang)
    reports = {}
    for path in (f"/{lang}/", article, f"/{lang}/consent", f"/{lang}/cookie-policy"):
        page.goto(path)
        reader.settle()
        reports[path] = axe_report(page)
    page.goto(f"/{lang}/privacy")
    reports["privacy"] = axe_report(page)
    page.goto(article)
    open_dialog(page, lang)
    reports["dialog"] = axe_report(page)
    assert {path: report for path, report in reports.items() if report} == {}


@pytest.mark.parametrize("lang", EDITIONS)
def test_long_words_fit_a_320_px_screen_in_the_banner_and_the_dialog(
    open_reader, lang: str
) -> None:
    page = open_reader(viewport=PHONE).page
    article = first_article(page, lang)
    page.goto(article)
    assert no_horizontal_scroll(page)
    for action in ("accept_all", "reject_all"):
        expect(banner_button(page, action)).to_be_in_viewport()
    expect(page.locator("#consent-banner .consent-customize")).to_be_in_viewport()
    sizes = page.evaluate(
        """() => ['accept_all', 'reject_all'].map(action => {
            const r = document.querySelector(`#consent-banner button[value=${action}]`)
                .getBoundingClientRect();
            return [Math.round(r.width), Math.round(r.height)];
        })"""
    )
    assert sizes[0] == sizes[1], "Accept All and Reject All must stay the same size"
    dialog = open_dialog(page, lang)
    assert no_horizontal_scroll(page)
    expect(dialog.locator('button[value="save"]')).to_be_in_viewport()
    expect(dialog.get_by_role("button", name=said(lang, "Close"))).to_be_in_viewport()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "320px"])
@pytest.mark.parametrize("lang", EDITIONS)
def test_the_banner_causes_no_layout_shift_in_the_editions(open_reader, lang, viewport) -> None:
    reader = open_reader(viewport=viewport)
    article = first_article(reader.page, lang)
    reader.page.add_init_script(
        """window.__shifts = [];
        new PerformanceObserver(list => {
            window.__shifts.push(...list.getEntries().map(e => e.value));
        }).observe({type: 'layout-shift', buffered: true});"""
    )
    reader.page.goto(article)
    reader.settle()
    reader.page.wait_for_timeout(300)
    expect(reader.page.locator("#consent-banner")).to_be_visible()
    assert reader.page.evaluate("window.__shifts") == []


@pytest.mark.parametrize("locale, edition", [("de-DE", "/de/"), ("fr-FR", "/fr/"), ("en-GB", "/")])
def test_a_browser_that_opens_the_bare_address_lands_on_its_edition(
    open_reader, locale: str, edition: str
) -> None:
    reader = open_reader(locale=locale)
    page = reader.page
    page.goto("/")
    assert page.url.endswith(edition)
    assert reader.cookie_names() == set()
    if edition != "/":
        page.locator(".editions a[hreflang=en]").click()
        page.wait_for_load_state()
        assert page.url.endswith("/") and not page.url.endswith(edition)
        expect(page.locator("html")).to_have_attribute("lang", "en")
