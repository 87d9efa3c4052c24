"""The page cache and the rate-limit counters in Redis are no single point of failure: with
Redis gone or hanging, pages are rendered without the cache and choices limited per worker,
each within the short Redis timeouts; the failure is logged once per interval, not per
request, and Redis is used again once it answers."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from globalupdates.articles.importer import import_paths
from tests.support.apps import CONTENT_DIR
from tests.support.consent import choose
from tests.support.pages import ARTICLE
from tests.support.redis_server import RedisServer, running_redis

PAGES = ("/", "/de/", ARTICLE, "/search?q=harbour")
RETRY_SECONDS = 1.0
# What a reader may wait for a page or a choice while Redis hangs: the two timeouts of one
# attempt (connect, answer: a quarter of a second each by default), and the render.
SLOWEST_ANSWER = 1.0
CACHE_FAILURE = "page cache unavailable"
LIMITS_FAILURE = "rate-limit counters unavailable in Redis"
LIMITS_BACK = "rate-limit counters are in Redis again"


@pytest.fixture
def site_on_redis(app_on, migrated_sqlite: Path, tmp_path: Path):
    """A site whose page cache and rate-limit counters are in ``redis`` (the kept responses
    in front of Flask are off, so every page goes to the page cache)."""

    def make(server: RedisServer) -> Flask:
        path = tmp_path / "site.sqlite3"
        shutil.copyfile(migrated_sqlite, path)
        app = app_on(
            f"sqlite:///{path}",
            CACHE_TYPE="RedisCache",
            CACHE_REDIS_URL=server.url,
            RATELIMIT_STORAGE_URI=server.url,
            KEPT_RESPONSE_BYTES=0,
            PAGE_CACHE_RETRY_SECONDS=RETRY_SECONDS,
            RATELIMIT_STORAGE_RETRY_SECONDS=RETRY_SECONDS,
        )
        with app.app_context():
            import_paths([CONTENT_DIR])
        return app

    return make


def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def page_keys(server: RedisServer) -> int:
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
    try:
        return len(client.keys("gu-page:*"))
    finally:
        client.close()


def fresh(page: str, label: str) -> str:
    return f"{page}{'&' if '?' in page else '?'}{label}"


def assert_pages_served_in_time(app: Flask, label: str) -> None:
    client = app.test_client()
    for page in PAGES:
        response, seconds = timed(client.get, fresh(page, label), headers={"Accept": "text/html"})
        assert response.status_code == 200, (page, response.status_code)
        assert seconds < SLOWEST_ANSWER, f"{page} took {seconds:.2f} s"


def assert_choice_stored_in_time(app: Flask) -> None:
    client = app.test_client()
    client.get("/consent")
    response, seconds = timed(choose, client, "accept_all")
    assert response.status_code == 303
    assert seconds < SLOWEST_ANSWER, f"the choice took {seconds:.2f} s"


def cache_failures_logged(caplog: pytest.LogCaptureFixture) -> int:
    return logged(caplog, CACHE_FAILURE)


def logged(caplog: pytest.LogCaptureFixture, message: str) -> int:
    return sum(message in record.getMessage() for record in caplog.records)


def reader_counts(server: RedisServer) -> list[int]:
    """The per-reader counters Flask-Limiter keeps in ``server``."""
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
    try:
        return [int(client.get(key) or 0) for key in client.scan_iter("*reader:*")]
    finally:
        client.close()


@pytest.mark.slow
def test_with_redis_gone_pages_and_choices_are_served_without_it(
    site_on_redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    with running_redis(tmp_path / "redis") as server:
        app = site_on_redis(server)
        assert_pages_served_in_time(app, "up")
        assert page_keys(server) >= len(PAGES)
        assert_choice_stored_in_time(app)

        server.stop()
        assert_pages_served_in_time(app, "down")
        assert_pages_served_in_time(app, "still-down")
        assert_choice_stored_in_time(app)
        assert cache_failures_logged(caplog) == 1, "logged once per interval, not per page"


@pytest.mark.slow
def test_with_redis_hanging_pages_and_choices_answer_then_use_it_again(
    site_on_redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    with running_redis(tmp_path / "redis") as server:
        app = site_on_redis(server)
        assert_pages_served_in_time(app, "up")
        assert_choice_stored_in_time(app)

        server.freeze()
        assert_pages_served_in_time(app, "hanging")
        assert_choice_stored_in_time(app)
        assert_pages_served_in_time(app, "still-hanging")
        assert cache_failures_logged(caplog) == 1

        server.thaw()
        time.sleep(RETRY_SECONDS)
        before = page_keys(server)
        assert_pages_served_in_time(app, "back")
        assert page_keys(server) == before + len(PAGES), "the cache was not used again"


@pytest.mark.slow
def test_with_redis_gone_limits_go_on_in_worker_memory_without_threads(
    site_on_redis, tmp_path: Path
):
    with running_redis(tmp_path / "redis") as server:
        app = site_on_redis(server)
        app.config["RATELIMIT_CONSENT_PER_READER"] = "3 per minute"
        client = app.test_client()
        assert choose(client, "accept_all").status_code == 303
        server.stop()
        threads = threading.active_count()
        # The worker's own count starts afresh (the choice counted in Redis is not in it).
        answers = [choose(client, "accept_all").status_code for _ in range(5)]
        assert answers == [303, 303, 303, 429, 429], "the reader's limit lapsed with Redis"
        assert threading.active_count() == threads, "the fallback counter started threads"


@pytest.mark.slow
def test_limits_count_in_the_worker_while_redis_hangs_then_in_redis_again(
    site_on_redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    with running_redis(tmp_path / "redis") as server:
        app = site_on_redis(server)
        app.config["RATELIMIT_CONSENT_PER_READER"] = "3 per minute"
        client = app.test_client()
        assert choose(client, "accept_all").status_code == 303  # no consent id yet: uncounted
        assert choose(client, "accept_all").status_code == 303
        assert reader_counts(server) == [1]

        server.freeze()
        answers, seconds = timed(lambda: [choose(client, "accept_all").status_code for _ in "1234"])
        assert answers == [303, 303, 303, 429], "the reader's limit lapsed with Redis"
        assert seconds < SLOWEST_ANSWER, "Redis was waited for again within the interval"
        assert logged(caplog, LIMITS_FAILURE) == 1, "logged once per interval, not per choice"

        server.thaw()
        time.sleep(RETRY_SECONDS)
        # Counted in Redis again: the reader has what Redis's count leaves them (the one
        # choice tried there while it hung may have been counted when it woke up).
        [in_redis] = reader_counts(server)
        assert in_redis in (1, 2)
        allowed = 3 - in_redis
        answers = [choose(client, "accept_all").status_code for _ in range(allowed + 1)]
        assert answers == [303] * allowed + [429]
        assert reader_counts(server) == [in_redis + allowed + 1]
        assert logged(caplog, LIMITS_BACK) == 1
