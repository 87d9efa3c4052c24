"""A real Chromium against the real site: gunicorn on a free loopback port, one per test session,
and a fresh browser context (no cookies) for every test."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests.support.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.support.gunicorn_server import Server, running_gunicorn

from .browsing import DESKTOP, FEATURE_TIMEOUT_MS, RECORD_CSP_VIOLATIONS, Reader

BROWSER_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives Chromium against gunicorn: all belong to the slow
    suite, also a file added later that forgets to say so."""
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.slow)


# The features answer within a second on a quiet machine; the margin is for a machine whose
# two cores are shared with other test runs.
expect.set_options(timeout=FEATURE_TIMEOUT_MS)


@pytest.fixture(scope="session")
def site_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served site's SQLite file, made and migrated by gunicorn's start-up hook."""
    return tmp_path_factory.mktemp("served-site") / "site.sqlite3"


@pytest.fixture(scope="session")
def site(site_database: Path) -> Iterator[Server]:
    """Two workers, and every request in the log kept beside the database."""
    settings = {"WEB_CONCURRENCY": "2", "GUNICORN_ACCESSLOG": "-"}
    with running_gunicorn(f"sqlite:///{site_database}", site_database.parent, settings) as served:
        yield served


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser: Browser, site: Server) -> Iterator[Any]:
    """Open fresh contexts on the served site; every one is closed after the test."""
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(base_url=site.base_url, **options)
        context.set_default_timeout(FEATURE_TIMEOUT_MS)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


@pytest.fixture
def open_reader(new_context) -> Any:
    def make(**options: Any) -> Reader:
        context = new_context(**options)
        page = context.new_page()
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        reader = Reader(page=page, context=context)
        page.on("request", reader.watch)
        return reader

    return make


@pytest.fixture
def reader(open_reader) -> Reader:
    return open_reader()


# Each worker writes the page views it counted at least once a second; a little more on a
# machine whose cores are shared with other test runs.
PAGE_VIEWS_WRITTEN_SECONDS = 2.5


@pytest.fixture
def count_rows(site_database: Path) -> Any:
    """Count rows in the served site's database, as the newsroom would see them: page views
    once the workers have written the ones they hold."""

    def count(table: str, **where: str) -> int:
        if table == "page_view":
            time.sleep(PAGE_VIEWS_WRITTEN_SECONDS)
        clause = " AND ".join(f"{column} = ?" for column in where) or "1 = 1"
        with closing(sqlite3.connect(site_database)) as connection:
            query = f"SELECT COUNT(*) FROM {table} WHERE {clause}"
            return int(connection.execute(query, tuple(where.values())).fetchone()[0])

    return count
