"""Rate limits: tight per reader, only a generous ceiling per address, 429 with a message."""

from __future__ import annotations

import uuid

import pytest
import redis

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
    assert second_host.config["RATELIMIT_STORAGE_URI"].startswith("redis://")
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
