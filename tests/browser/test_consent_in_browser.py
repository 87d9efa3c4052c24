"""A reader's consent journeys in Chromium with JavaScript on: nothing optional before a choice,
a grant that reloads the page under a policy naming its scripts, a choice that starts
nothing applied without a reload, withdrawal that really stops a feature."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, expect

from .browsing import ARTICLE, Reader

pytestmark = pytest.mark.browser

EVERY_FEATURE = {"textsize.js", "pageviews.js", "timing.js", "housead.js"}
ANALYTICS_VENDOR = "tally.js"  # the demo registry's third-party analytics service
FINGERPRINT = re.compile(r"-[0-9a-f]{32}(?=\.js$)")


def choose_in_banner(reader: Reader, label: str) -> None:
    reader.page.locator("#consent-banner").get_by_role("button", name=label).click()
    expect(reader.page.locator("#consent-banner")).to_have_count(0)


def open_dialog_from(reader: Reader, link_name: str):
    reader.page.get_by_role("link", name=link_name).click()
    dialog = reader.page.get_by_role("dialog", name="Cookie settings")
    expect(dialog).to_be_visible()
    return dialog


def script_files(reader: Reader) -> set[str]:
    sources = reader.page.eval_on_selector_all(
        "script[data-category]", "nodes => nodes.map(n => n.src)"
    )
    return {FINGERPRINT.sub("", source.rsplit("/", 1)[1]) for source in sources}


def test_first_visit_shows_the_banner_and_runs_nothing_optional(reader: Reader) -> None:
    reader.page.goto(ARTICLE)
    reader.settle()
    banner = reader.page.get_by_role("region", name="Your choice about cookies")
    expect(banner).to_be_visible()
    expect(banner.get_by_role("button", name="Accept All")).to_be_visible()
    expect(banner.get_by_role("button", name="Reject All")).to_be_visible()
    assert reader.running_categories() == []
    assert reader.optional_cookies() == set()
    assert reader.feature_requests == []
    storage = reader.page.evaluate("[localStorage.length, sessionStorage.length]")
    assert storage == [0, 0]


def expect_every_feature_running(page) -> None:
    """Each optional feature shows its effect: the view count, the load time, the house ad,
    and a text-size button that works."""
    expect(page.locator("#page-views")).to_be_visible()
    expect(page.locator("#page-timing")).to_be_visible()
    expect(page.locator(".house-ad")).to_be_visible()
    page.get_by_role("button", name="Larger text").click()
    expect(page.locator("html")).to_have_attribute("data-text-size", "large")


def test_accept_all_reloads_the_page_and_runs_every_feature(reader: Reader, count_rows) -> None:
    views_before = count_rows("page_view", path=ARTICLE)
    reader.page.goto(ARTICLE)
    reader.settle()
    reader.mark_document()

    with reader.page.expect_navigation():
        choose_in_banner(reader, "Accept All")

    page = reader.page
    expect_every_feature_running(page)
    reader.settle()
    assert not reader.same_document(), "new scripts need a page served under a new policy"
    assert script_files(reader) == EVERY_FEATURE | {ANALYTICS_VENDOR}
    assert {"gu_reader", "gu_ad_cap", "gu_text_size"} <= reader.optional_cookies()
    assert count_rows("page_view", path=ARTICLE) == views_before + 1
    assert {"pageview", "timing", "house-ad", "text-size"} <= set(reader.feature_requests)
    assert reader.csp_violations() == []


def test_after_accept_all_the_features_run_under_the_policy_with_no_violation(
    reader: Reader,
) -> None:
    console_errors: list[str] = []

    def keep_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    reader.page.on("console", keep_error)
    reader.page.goto(ARTICLE)
    reader.settle()
    with reader.page.expect_navigation() as navigation:
        choose_in_banner(reader, "Accept All")
    page = reader.page
    expect_every_feature_running(page)
    reader.settle()

    response = navigation.value
    assert response is not None and response.ok
    policy = response.headers["content-security-policy"]
    script_src = next(
        part.split()[1:] for part in policy.split(";") if part.split()[0] == "script-src"
    )
    assert not any(
        source.startswith(("'nonce-", "'unsafe-")) or source == "'self'" for source in script_src
    )
    scripts = page.eval_on_selector_all(
        "script[src]", "nodes => nodes.map(n => [n.src, n.getAttribute('nonce')])"
    )
    # the consent script, one for each category and the analytics vendor's, allowed by origin
    assert len(scripts) == 6
    for source, nonce in scripts:
        parts = urlsplit(source)
        assert source in script_src or f"{parts.scheme}://{parts.netloc}" in script_src, source
        assert nonce is None
    assert reader.csp_violations() == []
    assert [text for text in console_errors if "Content Security Policy" in text] == []


def test_reject_all_runs_none(reader: Reader, count_rows) -> None:
    views_before = count_rows("page_view", path=ARTICLE)
    reader.page.goto(ARTICLE)
    reader.settle()
    reader.mark_document()

    choose_in_banner(reader, "Reject All")
    reader.settle()

    assert reader.same_document(), "a choice that starts and stops nothing keeps the page"
    expect(reader.page.get_by_role("status")).to_have_text("Your cookie choices are saved.")
    assert reader.running_categories() == []
    assert reader.optional_cookies() == set()
    assert reader.feature_requests == []
    reader.page.reload()
    reader.settle()
    expect(reader.page.locator("#consent-banner")).to_have_count(0)
    assert reader.running_categories() == []
    assert reader.feature_requests == []
    assert count_rows("page_view", path=ARTICLE) == views_before


def test_customize_and_grant_analytics_only(reader: Reader, count_rows) -> None:
    views_before = count_rows("page_view", path=ARTICLE)
    reader.page.goto(ARTICLE)
    reader.settle()
    reader.mark_document()

    dialog = open_dialog_from(reader, "Customize")
    for box in ("Functional", "Analytics", "Performance", "Advertisement"):
        expect(dialog.get_by_role("checkbox", name=f"Allow {box.lower()}")).not_to_be_checked()
    dialog.get_by_role("checkbox", name="Allow analytics cookies and scripts").check()
    with reader.page.expect_navigation():
        dialog.get_by_role("button", name="Save my choices").click()

    expect(reader.page.locator("dialog")).to_have_count(0)
    expect(reader.page.locator("#consent-banner")).to_have_count(0)
    expect(reader.page.locator("#page-views")).to_be_visible()
    reader.settle()
    assert not reader.same_document()
    assert reader.running_categories() == ["analytics"]
    assert reader.optional_cookies() == {"gu_reader"}
    assert reader.feature_requests == ["pageview"]
    assert count_rows("page_view", path=ARTICLE) == views_before + 1
    assert reader.csp_violations() == []


def test_cookie_settings_withdraws_analytics(reader: Reader, count_rows) -> None:
    reader.page.goto(ARTICLE)
    dialog = open_dialog_from(reader, "Customize")
    dialog.get_by_role("checkbox", name="Allow analytics cookies and scripts").check()
    dialog.get_by_role("checkbox", name="Allow functional cookies and scripts").check()
    with reader.page.expect_navigation():
        dialog.get_by_role("button", name="Save my choices").click()
    expect(reader.page.locator("#page-views")).to_be_visible()
    assert "gu_reader" in reader.optional_cookies()
    reader.mark_document()

    dialog = open_dialog_from(reader, "Cookie settings")
    analytics = dialog.get_by_role("checkbox", name="Allow analytics cookies and scripts")
    expect(analytics).to_be_checked()
    analytics.uncheck()
    with reader.page.expect_navigation():
        dialog.get_by_role("button", name="Save my choices").click()
    reader.settle()

    assert not reader.same_document(), "a withdrawal must reload the page"
    assert "gu_reader" not in reader.optional_cookies()
    assert reader.running_categories() == ["functional"]
    views_after_withdrawal = count_rows("page_view", path=ARTICLE)
    reader.feature_requests.clear()
    reader.page.reload()
    reader.settle()
    assert "pageview" not in reader.feature_requests
    expect(reader.page.locator("#page-views")).to_have_count(0)
    assert count_rows("page_view", path=ARTICLE) == views_after_withdrawal


def test_escape_closes_the_dialog_without_granting_anything(reader: Reader) -> None:
    reader.page.goto(ARTICLE)
    dialog = open_dialog_from(reader, "Customize")
    dialog.get_by_role("checkbox", name="Allow analytics cookies and scripts").check()
    reader.page.keyboard.press("Escape")
    expect(reader.page.locator("dialog")).to_have_count(0)
    reader.settle()
    expect(reader.page.locator("#consent-banner")).to_be_visible()
    assert reader.running_categories() == []
    assert reader.optional_cookies() == set()
    assert reader.feature_requests == []


def test_global_privacy_control_in_the_browser_keeps_advertising_off(open_reader) -> None:
    reader = open_reader()
    reader.context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    reader.page.goto(ARTICLE)
    with reader.page.expect_navigation():
        choose_in_banner(reader, "Accept All")
    expect(reader.page.locator("#page-views")).to_be_visible()
    reader.settle()
    assert "advertisement" not in reader.running_categories()
    assert "gu_ad_cap" not in reader.optional_cookies()
    assert "house-ad" not in reader.feature_requests
