"""The same journeys with JavaScript switched off: plain forms and redirects do all the work."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browsing import ARTICLE, Reader

pytestmark = pytest.mark.browser


@pytest.fixture
def reader(open_reader) -> Reader:
    return open_reader(java_script_enabled=False)


def test_first_visit_without_javascript_sends_nothing_optional(reader: Reader) -> None:
    reader.page.goto(ARTICLE)
    expect(reader.page.get_by_role("region", name="Your choice about cookies")).to_be_visible()
    assert reader.running_categories() == []
    assert reader.optional_cookies() == set()


def test_reject_all_without_javascript(reader: Reader) -> None:
    reader.page.goto(ARTICLE)
    with reader.page.expect_navigation():
        reader.page.get_by_role("button", name="Reject All").click()
    assert reader.page.url.endswith(ARTICLE)
    expect(reader.page.locator("#consent-banner")).to_have_count(0)
    assert reader.running_categories() == []
    assert reader.optional_cookies() == set()


def test_accept_all_without_javascript_sends_every_category(reader: Reader) -> None:
    reader.page.goto(ARTICLE)
    with reader.page.expect_navigation():
        reader.page.get_by_role("button", name="Accept All").click()
    assert reader.page.url.endswith(ARTICLE)
    every = {"functional", "analytics", "performance", "advertisement"}
    assert set(reader.running_categories()) == every


def test_customize_then_withdraw_without_javascript(reader: Reader) -> None:
    page = reader.page
    page.goto(ARTICLE)
    page.get_by_role("link", name="Customize").click()
    assert "/consent?next=" in page.url
    expect(page.locator("dialog")).to_have_count(0)
    page.get_by_role("checkbox", name="Allow analytics cookies and scripts").check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(f"**{ARTICLE}")
    assert reader.running_categories() == ["analytics"]

    reader.context.add_cookies(
        [{"name": "gu_reader", "value": "a" * 32, "url": page.url.split("/articles/")[0]}]
    )
    page.get_by_role("link", name="Cookie settings").click()
    analytics = page.get_by_role("checkbox", name="Allow analytics cookies and scripts")
    expect(analytics).to_be_checked()
    analytics.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(f"**{ARTICLE}")

    assert reader.running_categories() == []
    assert "gu_reader" not in reader.optional_cookies()
