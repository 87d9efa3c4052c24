"""Rate limits: tight per reader, only a generous ceiling per address, 429 with a message."""

from __future__ import annotations

import threading
import time
import uuid

import flask_limiter._limits as flask_limiter_limits
import pytest
import redis
from limits.storage import storage_from_string

from globalupdates.ratelimits import SWEEP_SECONDS, WorkerMemoryStorage
from tests.support.consent import SAME_ORIGIN, choose, records, store_choice, stored_choice
from tests.support.servers import free_port


def test_a_reader_who_keeps_choosing_is_stopped_with_a_clear_429(app, client):
    """The first choice is made before the reader has a consent id, so only the address
    ceiling counts it; each later one counts against the reader's own 10 per minute."""
    statuses = [choose(client, "accept_all").status_code for _ in range(11)]
    assert statuses == [303] * 11
    before = stored_choice(client)
    client.get("/consent")
    refused = client.post("/consent", data={"action": "reject_all"}, headers=SAME_ORIGIN)
    assert refused.status_code == 429
    assert "wait a minute and try again" in refused.get_data(as_text=True)
    assert "Retry-After" in refused.headers
    assert stored_choice(client) == before
    assert len(records(app)) == 11


def test_refused_cross_site_posts_use_up_no_allowance(app, client):
    """A forged post is refused before any limit counts it, so another site cannot spend a
    reader's allowance and lock them out of their own settings."""
    statuses = [choose(client, "accept_all").status_code for _ in range(10)]
    assert statuses == [303] * 10  # the first uncounted, then 9 of the reader's 10
    forged = [
        client.post(
            "/consent", data={"action": "reject_all"}, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        for _ in range(5)
    ]
    assert forged == [403] * 5
    assert choose(client, "reject_all").status_code == 303
    assert choose(client, "reject_all").status_code == 429


def test_many_readers_behind_one_address_are_not_locked_out(app):
    statuses = [choose(app.test_client(), "reject_all").status_code for _ in range(40)]
    assert statuses == [303] * 40


def test_the_per_address_ceiling_still_applies(app_factory):
    app = app_factory(RATELIMIT_CONSENT_PER_ADDRESS="5 per minute")
    statuses = [choose(app.test_client(), "reject_all").status_code for _ in range(7)]
    assert statuses == [303] * 5 + [429] * 2


def test_beacons_are_limited_per_reader_with_a_json_message(app_factory):
    app = app_factory(RATELIMIT_BEACON_PER_READER="3 per minute")
    client = app.test_client()
    store_choice(client, {"analytics"})
    headers = SAME_ORIGIN
    statuses = [
        client.post("/features/pageview", json={"path": "/"}, headers=headers).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    refused = client.post("/features/pageview", json={"path": "/"}, headers=headers)
    assert "slow down" in refused.get_json()["error"]
    other = app.test_client()
    store_choice(other, {"analytics"})
    answer = other.post("/features/pageview", json={"path": "/"}, headers=SAME_ORIGIN)
    assert answer.status_code == 200


def test_reading_pages_is_never_limited(app_factory):
    app = app_factory(RATELIMIT_CONSENT_PER_READER="1 per minute")
    client = app.test_client()
    assert all(client.get("/consent").status_code == 200 for _ in range(20))


@pytest.fixture
def redis_prefix():
    prefix = f"gu-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    server = redis.Redis(host="127.0.0.1", port=6379)
    for key in server.scan_iter(f"*{prefix}*"):
        server.delete(key)
    server.close()


def test_limits_are_shared_through_redis_when_configured(app_factory, monkeypatch, redis_prefix):
    monkeypatch.setenv("FLASK_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    first_host = app_factory(
        RATELIMIT_KEY_PREFIX=redis_prefix, RATELIMIT_CONSENT_PER_READER="3 per minute"
    )
    second_host = app_factory(
        RATELIMIT_KEY_PREFIX=redis_prefix, RATELIMIT_CONSENT_PER_READER="3 per minute"
    )
    assert second_host.config["RATELIMIT_STORAGE_URI"] == "failsoft+redis://127.0.0.1:6379/0"
    reader = first_host.test_client()
    assert choose(reader, "accept_all").status_code == 303  # no consent id yet: uncounted
    assert choose(reader, "accept_all").status_code == 303  # the first of three
    consent_cookie = reader.get_cookie("gu_session").value
    elsewhere = second_host.test_client()
    elsewhere.set_cookie("gu_session", consent_cookie)
    statuses = [choose(elsewhere, "reject_all").status_code for _ in range(3)]
    assert statuses == [303, 303, 429]
    server = redis.Redis(host="127.0.0.1", port=6379)
    try:
        assert list(server.scan_iter(f"*{redis_prefix}*"))
    finally:
        server.close()


def test_an_unreachable_limit_store_never_blocks_a_choice(app_factory, monkeypatch):
    monkeypatch.setenv("FLASK_RATELIMIT_STORAGE_URI", f"redis://127.0.0.1:{free_port()}/0")
    app = app_factory()
    client = app.test_client()
    assert choose(client, "reject_all").status_code == 303
    assert stored_choice(client)["categories"] == ["necessary"]


# Work Flask-Limiter and limits would repeat on every limited request.


def test_a_limited_request_starts_no_thread(app, client, monkeypatch):
    """limits' memory:// store started a timer thread whenever its last one had run out."""
    choose(client, "accept_all")
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counted_start(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted_start)
    for _ in range(3):
        time.sleep(0.02)  # longer than the old store's timer, which then started anew
        assert choose(client, "reject_all").status_code == 303
    assert started == []


def test_each_limit_text_is_parsed_once(app, client, monkeypatch):
    choose(client, "accept_all")
    parsed: list[str] = []
    parse_many = flask_limiter_limits.parse_many

    def counted_parse(text: str):
        parsed.append(text)
        return parse_many(text)

    monkeypatch.setattr(flask_limiter_limits, "parse_many", counted_parse)
    for _ in range(4):
        assert choose(client, "reject_all").status_code == 303
    assert parsed == []


def test_apps_in_one_process_keep_their_own_limits(app_factory):
    tight = app_factory(RATELIMIT_CONSENT_PER_ADDRESS="2 per minute", RATELIMIT_KEY_PREFIX="a")
    loose = app_factory(RATELIMIT_CONSENT_PER_ADDRESS="4 per minute", RATELIMIT_KEY_PREFIX="b")
    statuses = {"tight": [], "loose": []}
    for _ in range(5):
        for name, site in (("tight", tight), ("loose", loose)):
            statuses[name].append(choose(site.test_client(), "reject_all").status_code)
    assert statuses == {"tight": [303] * 2 + [429] * 3, "loose": [303] * 4 + [429]}


def test_worker_memory_counters_end_with_their_window(monkeypatch):
    now = [1_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    storage = storage_from_string("worker-memory://")
    assert isinstance(storage, WorkerMemoryStorage)
    assert [storage.incr("reader", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("reader") == 3 and storage.get_expiry("reader") == 1_060.0
    now[0] = 1_059.0
    assert storage.incr("reader", 60) == 4
    now[0] = 1_060.0
    assert storage.get("reader") == 0
    assert storage.incr("reader", 60) == 1 and storage.get_expiry("reader") == 1_120.0


def test_worker_memory_sweeps_counters_nobody_reads_again(monkeypatch):
    now = [1_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    storage = WorkerMemoryStorage()
    for reader in range(100):
        storage.incr(f"reader-{reader}", 10)
    now[0] += SWEEP_SECONDS
    storage.incr("another", 10)
    assert list(storage.counters) == ["another"]
