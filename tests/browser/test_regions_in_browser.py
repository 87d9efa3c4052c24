"""An opt-out place in a real Chromium: the banner says what runs until refused, the banner
and footer link Do Not Sell or Share, the link's one button opts out, GPC refuses from the
first page, and the pages pass axe-core. A proxy's place headers come with every request
the browser makes (gunicorn reads them because the proxy settings trust one).

The pictures go to a temporary folder, or to GU_SCREENSHOT_DIR."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from globalupdates.consent.model.registry_file import load_registry
from tests.support.gunicorn_server import Server, running_gunicorn

from .browsing import ARTICLE, DESKTOP, axe_report
from .test_screenshots import assert_is_a_picture

CALIFORNIA = {"X-Country": "US", "X-Country-Region": "CA"}
BAVARIA = {"X-Country": "DE", "X-Country-Region": "BY"}
PLACE_SETTINGS = {
    "WEB_CONCURRENCY": "1",
    "FLASK_PROXY_FIX_X_FOR": "1",
    "FLASK_COUNTRY_HEADER": "X-Country",
    "FLASK_REGION_HEADER": "X-Country-Region",
}
RUNS_UNTIL_REFUSED = ("analytics", "performance")


@pytest.fixture(scope="module")
def place_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("regions-site")
    with running_gunicorn(f"sqlite:///{folder / 'site.sqlite3'}", folder, PLACE_SETTINGS) as site:
        yield site


@pytest.fixture
def californian(browser: Browser, place_site: Server) -> Iterator:
    def open_page(**headers: str):
        context = browser.new_context(
            base_url=place_site.base_url,
            viewport=DESKTOP,
            extra_http_headers={**CALIFORNIA, **headers},
        )
        opened.append(context)
        return context.new_page()

    opened: list = []
    yield open_page
    for context in opened:
        context.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    chosen = os.environ.get("GU_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def gated(page) -> set[str]:
    return set(
        page.locator("script[data-category]").evaluate_all(
            "scripts => scripts.map(s => s.dataset.category)"
        )
    )


def test_an_opt_out_reader_sees_what_runs_and_opts_out_in_one_click(californian, folder):
    page = californian()
    page.goto(ARTICLE)
    banner = page.locator("#consent-banner")
    expect(banner).to_be_visible()
    expect(banner.locator("[data-regime=opt-out]")).to_contain_text("Analytics")
    expect(
        banner.get_by_role("link", name="Do Not Sell or Share My Personal Information")
    ).to_be_visible()
    assert gated(page) == set(RUNS_UNTIL_REFUSED)
    assert axe_report(page) == ""
    page.screenshot(path=folder / "opt-out-banner.png", animations="disabled", caret="hide")
    footer = page.locator("footer")
    footer.scroll_into_view_if_needed()
    footer_link = footer.get_by_role("link", name="Do Not Sell or Share My Personal Information")
    expect(footer_link).to_be_visible()
    footer.screenshot(path=folder / "opt-out-footer.png", animations="disabled", caret="hide")
    footer_link.click()
    section = page.locator("#do-not-sell")
    expect(section).to_be_visible()
    assert axe_report(page) == ""
    page.screenshot(path=folder / "opt-out-do-not-sell.png", animations="disabled", caret="hide")
    section.get_by_role("button", name="Opt out").click()
    page.goto(ARTICLE)
    expect(page.locator("#consent-banner")).to_have_count(0)
    assert gated(page) == set()
    expect(page.locator("footer a.do-not-sell")).to_be_visible()
    for name in ("opt-out-banner", "opt-out-footer", "opt-out-do-not-sell"):
        assert_is_a_picture(folder / f"{name}.png")


def test_gpc_refuses_from_the_first_page_and_the_banner_says_so(californian, folder):
    page = californian(**{"Sec-GPC": "1"})
    page.goto(ARTICLE)
    notice = page.locator("#consent-banner [data-gpc-refused]")
    expect(notice).to_contain_text("Global Privacy Control")
    assert gated(page) == set()
    page.screenshot(path=folder / "opt-out-gpc.png", animations="disabled", caret="hide")
    assert_is_a_picture(folder / "opt-out-gpc.png")


@pytest.mark.parametrize(
    "edition, link",
    [
        ("de", "Meine personenbezogenen Daten nicht verkaufen oder weitergeben"),
        ("fr", "Ne pas vendre ni partager mes informations personnelles"),
    ],
)
def test_the_opt_out_banner_speaks_german_and_french(californian, folder, edition, link):
    page = californian()
    page.goto(f"/{edition}/")
    expect(page.locator("#consent-banner").get_by_role("link", name=link)).to_be_visible()
    expect(page.locator("footer").get_by_role("link", name=link)).to_be_visible()
    picture = folder / f"opt-out-banner-{edition}.png"
    page.screenshot(path=picture, animations="disabled", caret="hide", full_page=True)
    assert_is_a_picture(picture)


@pytest.mark.parametrize("edition", ["en", "de", "fr"])
def test_the_banner_promises_permission_only_where_nothing_runs_without_it(californian, edition):
    """An opt-in reader is told nothing optional runs without their permission; an opt-out
    reader, for whom some categories run until refused, is told so instead, never the other."""
    notice = load_registry().in_language(edition).notice
    assert notice.text_opt_out is not None
    for place, shown, untrue in [
        (BAVARIA, notice.text, notice.text_opt_out),
        (CALIFORNIA, notice.text_opt_out, notice.text),
    ]:
        page = californian(**place)
        page.goto("/" if edition == "en" else f"/{edition}/")
        said = " ".join(page.locator("#consent-banner").inner_text().split())
        assert shown in said and untrue not in said
