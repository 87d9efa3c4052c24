"""What the browser tests share: window sizes, the pages, a reader's tab, and a browser of its
own for a module that serves its own site."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, Request

from globalupdates.consent.model.registry_file import load_registry
from tests.support.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.support.gunicorn_server import Server, running_gunicorn
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


# Every host but the site's fails to resolve: no third party is ever contacted for real.
OFFLINE_CHROMIUM_FLAGS = [
    *CHROMIUM_FLAGS,
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def site_of_its_own(folder: Path) -> Iterator[Server]:
    """A site served for one test module alone, from ``folder``: one worker of four threads."""
    settings = {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4"}
    with running_gunicorn(f"sqlite:///{folder / 'site.sqlite3'}", folder, settings) as server:
        yield server


def in_browser(served: Server, scenario: Callable[..., Any], **context_options: Any) -> Any:
    """Run ``scenario(page, outside)`` in a fresh Chromium, in a thread of its own (so it never
    shares an event loop with the session's browser). Every request to a host other than the
    site is answered here with a stand-in and listed in ``outside``, so the list shows whether,
    and when, the page asked for it."""

    def run() -> Any:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=OFFLINE_CHROMIUM_FLAGS
            )
            try:
                context = browser.new_context(base_url=served.base_url, **context_options)
                context.set_default_timeout(FEATURE_TIMEOUT_MS)
                outside: list[str] = []

                def answer(route: Any) -> None:
                    if urlsplit(route.request.url).hostname == "127.0.0.1":
                        route.continue_()
                        return
                    outside.append(route.request.url)
                    route.fulfill(status=200, content_type="text/html", body="<p>Stand-in</p>")

                context.route("**/*", answer)
                return scenario(context.new_page(), outside)
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(run).result(timeout=120)
