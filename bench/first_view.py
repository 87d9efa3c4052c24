"""Measure the consent script's budgets on the real site, served by gunicorn.

    .venv/bin/python bench/first_view.py [--json]

It prints, and checks against the budgets:
- the consent script and the consent part of the stylesheet, gzipped;
- everything a new reader's first view of an article downloads (HTML, CSS, JS), gzipped;
- what blocks rendering (stylesheets, and scripts without defer or async in the head);
- the layout shift of a first view with the banner, measured in Chromium at desktop and 320 px.

Compression is gzip level 6 (what `gzip` and most servers use by default), bodies only.
gunicorn is started (and stopped) by tests/support, as the tests start it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from globalupdates.config import PROJECT_ROOT
from tests.support.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.support.gunicorn_server import running_gunicorn
from tests.support.pages import NEWSROOMS

ARTICLE = NEWSROOMS
CONSENT_JS = PROJECT_ROOT / "static" / "js" / "consent.js"
SITE_CSS = PROJECT_ROOT / "static" / "css" / "site.css"
CONSENT_CSS_MARKER = "/* consent:"
CONSENT_CSS_END = "/* end of consent */"
BUDGETS = {"consent_js_gzip": 2048, "consent_css_gzip": 2048, "first_view_gzip": 14 * 1024}
VIEWPORTS = {"desktop": (1280, 800), "320px": (320, 640)}


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6, mtime=0))


def consent_css() -> bytes:
    """The consent rules sit in the one stylesheet between two marker comments."""
    text = SITE_CSS.read_text(encoding="utf-8")
    start = text.find(CONSENT_CSS_MARKER)
    end = text.find(CONSENT_CSS_END, start)
    if start < 0 or end < 0:
        raise SystemExit(f"{SITE_CSS} has no '{CONSENT_CSS_MARKER}' ... '{CONSENT_CSS_END}' part")
    return text[start:end].encode()


class Resources(HTMLParser):
    """The stylesheets and scripts a page asks for, and which of them block rendering."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.blocking: list[str] = []
        self.in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "head":
            self.in_head = True
        elif tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.urls.append(found["href"] or "")
            if found.get("media") in (None, "all", "screen"):
                self.blocking.append(found["href"] or "")
        elif tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
            if self.in_head and "defer" not in found and "async" not in found:
                self.blocking.append(found["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read()


def first_view(base_url: str) -> dict:
    html = fetch(base_url + ARTICLE)
    parser = Resources()
    parser.feed(html.decode())
    parts = {ARTICLE: gzipped_size(html)}
    for url in parser.urls:
        parts[url] = gzipped_size(fetch(base_url + url))
    return {"parts": parts, "total": sum(parts.values()), "render_blocking": parser.blocking}


def layout_shift(base_url: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    observer = """window.__cls = 0;
        new PerformanceObserver(l => l.getEntries().forEach(e => {
            if (!e.hadRecentInput) window.__cls += e.value; }))
        .observe({type: 'layout-shift', buffered: true});"""
    shifts = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for name, (width, height) in VIEWPORTS.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.add_init_script(observer)
            page.goto(base_url + ARTICLE, wait_until="networkidle")
            page.wait_for_selector("#consent-banner")
            page.wait_for_timeout(500)
            shifts[name] = float(page.evaluate("window.__cls"))
            page.close()
        browser.close()
    return shifts


@contextmanager
def served_site(workdir: Path) -> Iterator[str]:
    """The site under gunicorn (two workers) on a fresh SQLite file; yields its base URL."""
    database = f"sqlite:///{workdir / 'site.sqlite3'}"
    with running_gunicorn(database, workdir, {"WEB_CONCURRENCY": "2"}) as server:
        yield server.base_url


def measure() -> dict:
    with tempfile.TemporaryDirectory() as workdir, served_site(Path(workdir)) as base_url:
        view = first_view(base_url)
        shifts = layout_shift(base_url)
    return {
        "consent_js_gzip": gzipped_size(CONSENT_JS.read_bytes()),
        "consent_js_raw": len(CONSENT_JS.read_bytes()),
        "consent_css_gzip": gzipped_size(consent_css()),
        "consent_css_raw": len(consent_css()),
        "first_view_gzip": view["total"],
        "first_view_parts": view["parts"],
        "render_blocking": view["render_blocking"],
        "cumulative_layout_shift": shifts,
    }


def verdicts(figures: dict) -> list[str]:
    failures = [
        f"{name} is {figures[name]} B, over its budget of {limit} B"
        for name, limit in BUDGETS.items()
        if figures[name] > limit
    ]
    stylesheets = [u for u in figures["render_blocking"] if re.search(r"\.css(\?|$)", u)]
    if len(figures["render_blocking"]) > 1 or len(stylesheets) != 1:
        failures.append(f"render-blocking resources: {figures['render_blocking']}")
    failures += [
        f"layout shift {value} at {name}"
        for name, value in figures["cumulative_layout_shift"].items()
        if value
    ]
    return failures


def report(figures: dict) -> None:
    print(f"consent JS   {figures['consent_js_gzip']:>6} B gzipped ({figures['consent_js_raw']} B)")
    print(
        f"consent CSS  {figures['consent_css_gzip']:>6} B gzipped ({figures['consent_css_raw']} B)"
    )
    print(f"first view of {ARTICLE}, gzipped:")
    for url, size in figures["first_view_parts"].items():
        print(f"  {size:>6} B  {url}")
    print(f"  {figures['first_view_gzip']:>6} B  in all (budget {BUDGETS['first_view_gzip']} B)")
    print(f"render-blocking: {', '.join(figures['render_blocking'])}")
    for name, value in figures["cumulative_layout_shift"].items():
        print(f"CLS with the banner at {name}: {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    figures = measure()
    if parser.parse_args().json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    failures = verdicts(figures)
    for failure in failures:
        print(f"OVER BUDGET: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
