"""A choice per service in a real Chromium, with JavaScript and without: a reader who grants
functional but refuses one video service gets the other's embed and never the refused one's.

The site runs under gunicorn on a free loopback port; Debian's Chromium is driven through
Playwright in a thread of its own. Every request to a host other than the site is answered by
the test and recorded, so no third party is contacted for real and the record shows whether
the page asked for it at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.gunicorn_server import Server

from .browsing import in_browser, site_of_its_own

pytestmark = pytest.mark.browser

VIDMOOR_ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"
CLIPWELL_ARTICLE = "/articles/ostervale-lantern-boats-return"
VIDMOOR_HOSTS = {"player.vidmoor.example", "vidmoor.example"}
CLIPWELL_FRAME = "https://embed.clipwell.example/v/ostervale-lanterns"
TALLY_HOSTS = {"cdn.tallyhouse.example", "collect.tallyhouse.example"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from site_of_its_own(tmp_path_factory.mktemp("services-site"))


def read_both_articles(page: Any, outside: list[str]) -> dict:
    """Visit the refused service's article, then the allowed one's, as the reader would."""
    seen: dict[str, Any] = {"cookies": {c["name"] for c in page.context.cookies()}}
    refused = page.goto(VIDMOOR_ARTICLE)
    page.locator("figure.embed").scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    seen["refused_policy"] = refused.headers["content-security-policy"]
    seen["refused_iframes"] = page.locator("iframe").count()
    allowed = page.goto(CLIPWELL_ARTICLE)
    page.locator("figure.embed iframe").scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    seen["allowed_policy"] = allowed.headers["content-security-policy"]
    seen["allowed_frames"] = [
        page.locator("figure.embed iframe").get_attribute("src"),
    ]
    seen["outside"] = list(outside)
    return seen


def assert_only_the_allowed_video_service(seen: dict) -> None:
    assert seen["refused_iframes"] == 0
    assert seen["allowed_frames"] == [CLIPWELL_FRAME]
    hosts = {urlsplit(url).hostname for url in seen["outside"]}
    assert not hosts & VIDMOOR_HOSTS, seen["outside"]
    assert not hosts & TALLY_HOSTS, seen["outside"]
    assert CLIPWELL_FRAME in seen["outside"]
    for policy in (seen["refused_policy"], seen["allowed_policy"]):
        assert "vidmoor" not in policy and "tallyhouse" not in policy
        assert "frame-src https://embed.clipwell.example" in policy
    assert "_tally_id" not in seen["cookies"], "the refused service's cookie is cleared"


def test_with_javascript_the_reader_refuses_one_video_service_and_gets_the_other(served):
    """The reader first accepted all, and the analytics vendor set its cookie; then they
    refuse that vendor and one video host, keeping both categories."""

    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto("/")
        with page.expect_navigation():
            page.get_by_role("button", name="Accept All").click()
        page.context.add_cookies([{"name": "_tally_id", "value": "7", "url": page.url}])
        page.goto("/consent")
        kept_while_granted = "_tally_id" in {c["name"] for c in page.context.cookies()}
        page.get_by_label("Allow Functional cookies and scripts").uncheck()
        cleared_with_category = page.get_by_label("Allow Clipwell (demonstration video host)")
        seen = {"cleared_with_category": not cleared_with_category.is_checked()}
        page.get_by_label("Allow Clipwell (demonstration video host)").check()
        seen["category_ticked_by_service"] = page.get_by_label(
            "Allow Functional cookies and scripts"
        ).is_checked()
        page.get_by_label("Allow Tallyhouse Analytics (demonstration vendor)").uncheck()
        outside.clear()
        with page.expect_navigation():
            page.get_by_role("button", name="Save my choices").click()
        return {
            "kept_while_granted": kept_while_granted,
            **seen,
            **read_both_articles(page, outside),
        }

    seen = in_browser(served, scenario)
    assert seen["kept_while_granted"] is True
    assert seen["cleared_with_category"] is True
    assert seen["category_ticked_by_service"] is True
    assert_only_the_allowed_video_service(seen)


def test_without_javascript_the_form_grants_the_ticked_service_only(served):
    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto("/consent")
        page.get_by_label("Allow Clipwell (demonstration video host)").check()
        untouched = page.get_by_label("Allow Functional cookies and scripts").is_checked()
        with page.expect_navigation():
            page.get_by_role("button", name="Save my choices").click()
        return {"category_untouched": untouched, **read_both_articles(page, outside)}

    seen = in_browser(served, scenario, java_script_enabled=False)
    assert seen["category_untouched"] is False, "no script ticks the category here"
    assert_only_the_allowed_video_service(seen)


def test_the_dialog_shows_each_service_and_a_keyboard_refuses_one(served):
    def scenario(page: Any, outside: list[str]) -> dict:
        page.goto(CLIPWELL_ARTICLE)
        page.get_by_role("link", name="Customize").click()
        dialog = page.get_by_role("dialog", name="Cookie settings")
        dialog.wait_for()
        category = dialog.get_by_role("checkbox", name="Allow Functional cookies and scripts")
        category.focus()
        page.keyboard.press("Space")
        vidmoor = dialog.get_by_role("checkbox", name="Allow Vidmoor (demonstration video host)")
        vidmoor.focus()
        page.keyboard.press("Space")
        seen = {
            "facts": dialog.locator("#service-clipwell .service-facts").inner_text(),
            "vidmoor_checked": vidmoor.is_checked(),
        }
        dialog.get_by_role("button", name="Save my choices").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        return {**seen, **read_both_articles(page, outside)}

    seen = in_browser(served, scenario)
    assert "Who runs it" in seen["facts"] and "embed.clipwell.example" in seen["facts"]
    assert seen["vidmoor_checked"] is False
    assert_only_the_allowed_video_service(seen)
