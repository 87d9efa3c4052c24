"""Embeds in a real Chromium: nothing reaches the provider until the reader allows it.

Self-contained: this module serves the site under gunicorn on a free loopback port and drives
Debian's Chromium through Playwright in a worker thread of its own (so it never shares an
event loop with other browser fixtures). Every request to a host other than the site is
answered by the test itself and recorded, so the provider's origin is never contacted for
real, and the record shows exactly when the page asked for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.gunicorn_server import Server
from tests.support.pages import ARTICLE

from .browsing import in_browser, site_of_its_own

pytestmark = pytest.mark.browser

PLAYER_HOST = "player.vidmoor.example"
ANCHOR = "embed-vidmoor-harrowmere-first-cycle"
PROVIDER_HOSTS = {PLAYER_HOST, "vidmoor.example"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from site_of_its_own(tmp_path_factory.mktemp("embeds-site"))


def to_provider(outside: list[str]) -> list[str]:
    """The requests of ``outside`` that went to the provider."""
    return [url for url in outside if urlsplit(url).hostname in PROVIDER_HOSTS]


def test_nothing_is_requested_from_the_provider_until_the_reader_allows_it_once(served):
    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto(ARTICLE)
        page.wait_for_load_state("networkidle")
        placeholder = page.locator(".embed-placeholder")
        placeholder.scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        before = {
            "provider_requests": to_provider(outside),
            "iframes": page.locator("iframe").count(),
            "placeholder": placeholder.inner_text(),
        }
        with (
            page.expect_request(lambda r: r.is_navigation_request()) as sent,
            page.expect_request(lambda r: urlsplit(r.url).hostname == PLAYER_HOST),
        ):
            page.get_by_role("button", name="Show this once").click()
        after_once = {
            "sent": (sent.value.method, sent.value.url, sent.value.post_data),
            "url": page.url,
            "iframe_src": page.locator("figure.embed iframe").get_attribute("src"),
        }
        outside.clear()
        page.goto(ARTICLE)
        page.locator("figure.embed").scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        return {
            **before,
            **after_once,
            "requests_on_return": to_provider(outside),
            "iframes_on_return": page.locator("iframe").count(),
        }

    seen = in_browser(served, scenario)
    assert seen["provider_requests"] == []
    assert seen["iframes"] == 0
    assert "Vidmoor (demonstration video host)" in seen["placeholder"]
    assert "vm_viewer" in seen["placeholder"]
    method, url, form = seen["sent"]
    assert (method, form) == ("POST", "embed=vidmoor%3Aharrowmere-first-cycle")
    assert urlsplit(url).path == ARTICLE and not urlsplit(url).query
    assert seen["url"].endswith(f"{ARTICLE}#{ANCHOR}")
    assert seen["iframe_src"] == f"https://{PLAYER_HOST}/embed/harrowmere-first-cycle"
    assert seen["requests_on_return"] == [] and seen["iframes_on_return"] == 0


def test_granting_the_category_from_the_placeholder_loads_the_embed_from_then_on(served):
    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto(ARTICLE)
        page.wait_for_load_state("networkidle")
        early = to_provider(outside)
        page.get_by_role("button", name="Always allow Vidmoor (demonstration video host)").click()
        page.wait_for_url(f"**{ARTICLE}")
        page.locator("figure.embed iframe").scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        seen = {
            "early": early,
            "after_grant": to_provider(outside),
            "banner": page.locator("#consent-banner").count(),
        }
        page.reload()
        seen["iframes"] = page.locator("iframe").count()
        return seen

    seen = in_browser(served, scenario)
    assert seen["early"] == []
    assert seen["after_grant"] == [f"https://{PLAYER_HOST}/embed/harrowmere-first-cycle"]
    assert seen["banner"] == 0
    assert seen["iframes"] == 1


def test_without_javascript_the_placeholder_links_to_the_provider_and_still_works(served):
    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto(ARTICLE)
        page.locator(".embed-placeholder").scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        link = page.get_by_role("link", name="Open it on Vidmoor (demonstration video host)")
        seen = {"href": link.get_attribute("href"), "early": to_provider(outside)}
        with page.expect_navigation():
            page.get_by_role("button", name="Show this once").click()
        seen["url"] = page.url
        seen["iframes"] = page.locator("figure.embed iframe").count()
        return seen

    seen = in_browser(served, scenario, java_script_enabled=False)
    assert seen["href"] == "https://vidmoor.example/watch/harrowmere-first-cycle"
    assert seen["early"] == []
    assert seen["url"].endswith(f"{ARTICLE}#{ANCHOR}")
    assert seen["iframes"] == 1


def test_a_link_that_asks_for_the_embed_loads_nothing_from_the_provider(served):
    """The old "show once" address, followed from anywhere: the reader did nothing on this
    site, so the page stays as it is for them, with no frame and no request to the provider."""

    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto(f"{ARTICLE}?embed=vidmoor:harrowmere-first-cycle#{ANCHOR}")
        page.locator("figure.embed").scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        return {
            "provider_requests": to_provider(outside),
            "iframes": page.locator("iframe").count(),
            "placeholders": page.locator(".embed-placeholder").count(),
        }

    seen = in_browser(served, scenario)
    assert seen == {"provider_requests": [], "iframes": 0, "placeholders": 1}


@pytest.mark.parametrize("path", ["/", ARTICLE, "/search?q=tidal", "/sections/world"])
def test_pages_fit_a_320_px_screen_and_follow_the_dark_preference(served, path):
    """The same browser, at phone width: no sideways scrolling, dark colours when asked for,
    and a print layout without navigation, banner or embed controls."""

    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto(path)
        layout = page.evaluate(
            """() => ({
                scrollWidth: document.scrollingElement.scrollWidth,
                background: getComputedStyle(document.body).backgroundColor,
                fontSize: parseFloat(getComputedStyle(document.body).fontSize),
            })"""
        )
        page.emulate_media(media="print")
        layout["printed"] = page.evaluate(
            """() => ['.site-nav', '.consent-banner', '.embed-placeholder form']
                .flatMap(s => [...document.querySelectorAll(s)])
                .map(e => getComputedStyle(e).display)"""
        )
        return layout

    seen = in_browser(served, scenario, viewport={"width": 320, "height": 640}, color_scheme="dark")
    assert seen["scrollWidth"] <= 320
    assert seen["background"] == "rgb(19, 19, 19)"
    assert seen["fontSize"] >= 16
    assert seen["printed"] and set(seen["printed"]) == {"none"}
