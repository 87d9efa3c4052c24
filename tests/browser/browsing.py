"""What the browser tests share: window sizes, the pages and a reader's tab."""

from __future__ import annotations

from dataclasses import dataclass, field

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, Request

from globalupdates.consent.model.registry_file import load_registry
from tests.support.pages import NEWSROOMS

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 320, "height": 640}
# The article most browser tests read: the demo story without an embed.
ARTICLE = NEWSROOMS
# The cookies of the one category that needs no consent, as the registry declares them.
NECESSARY_COOKIES = {
    cookie.name
    for category in load_registry(None).categories
    if category.required
    for cookie in category.cookies
}
RECORD_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", event => {
    (window.__cspViolations = window.__cspViolations || []).push(
        `${event.effectiveDirective} blocked ${event.blockedURI}`);
});
"""
FEATURE_TIMEOUT_MS = 10_000


@dataclass
class Reader:
    """One reader's tab, with every request it made to the site's optional features."""

    page: Page
    context: BrowserContext
    feature_requests: list[str] = field(default_factory=list)

    def watch(self, request: Request) -> None:
        path = request.url.split("/", 3)[3]
        if path.startswith("features/"):
            self.feature_requests.append(path.removeprefix("features/"))

    def cookie_names(self) -> set[str]:
        return {cookie["name"] for cookie in self.context.cookies()}

    def optional_cookies(self) -> set[str]:
        return self.cookie_names() - NECESSARY_COOKIES

    def running_categories(self) -> list[str]:
        """Each category whose scripts run, once (its own and its services' scripts alike)."""
        return self.page.eval_on_selector_all(
            "script[data-category]",
            "nodes => [...new Set(nodes.map(n => n.dataset.category))]",
        )

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")

    def mark_document(self) -> None:
        """Tag the current document, so a later check can tell whether the page reloaded."""
        self.page.evaluate("window.__sameDocument = true")

    def same_document(self) -> bool:
        return bool(self.page.evaluate("window.__sameDocument === true"))

    def settle(self) -> None:
        """Wait until the page has loaded and made no request for a moment."""
        self.page.wait_for_load_state("networkidle")


def axe_report(page: Page) -> str:
    """axe-core's report of the page as it is now; empty when it finds no violation."""
    results = Axe().run(page)
    return "" if results.violations_count == 0 else results.generate_report()


def no_horizontal_scroll(page: Page) -> bool:
    """Neither the page nor an open dialog is wider than the window."""
    return bool(
        page.evaluate(
            "() => [document.documentElement, ...document.querySelectorAll('dialog')]"
            ".every(el => el.scrollWidth <= el.clientWidth)"
        )
    )
