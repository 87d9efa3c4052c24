"""Under load, on several gunicorn workers: every request answered, every accepted one stored.

Runs on SQLite (WAL, busy timeout) and, with TEST_DATABASE_URL, on PostgreSQL. A worker
killed or the whole pool reloaded with SIGHUP in the middle loses no accepted choice. Page
views wait in each worker's memory for up to a second (``features.pageviews``): a reload
writes them, a worker killed outright loses only the ones it had not written yet.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from globalupdates import create_app
from globalupdates.consent.proof.verification import verify_chain
from globalupdates.extensions import db
from tests.support.gunicorn_server import SECRET_KEY, Server, running_gunicorn
from tests.support.load_client import ACCEPTED, DELIBERATE_REFUSAL, LoadResult, run_load

# Each test runs thousands of requests against gunicorn.
pytestmark = pytest.mark.slow

READERS = 24
ROUNDS = 42  # each round is one consent choice and one page-view beacon per reader
FAULT_ROUNDS = 20  # enough for the reload or the kill to land in the middle of the load
WORKERS = 3
GENEROUS = "100000 per minute"  # rate limits stay on, raised above what one test sends
PROOF_KEY = "load:proof-key-for-the-load-test-not-for-production"  # the workers' and verify's
SERVER_SETTINGS = {
    "FLASK_CONSENT_PROOF_KEY": PROOF_KEY,
    "WEB_CONCURRENCY": str(WORKERS),
    # As on several hosts: the limit counters live in the machine's Redis, shared by workers.
    "FLASK_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    "FLASK_RATELIMIT_KEY_PREFIX": f"gu-load-{uuid.uuid4().hex[:12]}",
    "FLASK_RATELIMIT_CONSENT_PER_READER": GENEROUS,
    "FLASK_RATELIMIT_CONSENT_PER_ADDRESS": GENEROUS,
    "FLASK_RATELIMIT_BEACON_PER_READER": GENEROUS,
    "FLASK_RATELIMIT_BEACON_PER_ADDRESS": GENEROUS,
}


def stored_counts(database_uri: str, query: str) -> dict[str, int]:
    engine = create_engine(database_uri)
    try:
        with engine.connect() as connection:
            return {key: count for key, count in connection.execute(text(query))}
    finally:
        engine.dispose()


def stored_consents(database_uri: str) -> dict[str, int]:
    return stored_counts(
        database_uri, "SELECT consent_id, COUNT(*) FROM consent_record GROUP BY consent_id"
    )


def stored_views(database_uri: str) -> dict[str, int]:
    return stored_counts(database_uri, "SELECT reader, COUNT(*) FROM page_view GROUP BY reader")


def assert_everything_answered(result: LoadResult, rounds: int) -> None:
    assert result.failures() == []
    unexpected = {
        status: count
        for status, count in result.statuses().items()
        if status not in ACCEPTED and status != DELIBERATE_REFUSAL
    }
    assert unexpected == {}, f"answers other than success or a deliberate 429: {unexpected}"
    assert result.total("consents", "accepted") > READERS * rounds // 2
    assert result.total("views", "accepted") > READERS * rounds // 2


def assert_exactly_one_record_per_accepted_request(result: LoadResult, database_uri: str) -> None:
    assert stored_consents(database_uri) == result.accepted_consents_by_id()
    assert stored_views(database_uri) == result.accepted_views_by_reader()


def assert_chain_verifies(database_uri: str, expected_records: int) -> None:
    """The hash chain of consent records is whole after concurrent appends from every worker."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "SECRET_KEY": SECRET_KEY,
            "CONSENT_PROOF_KEY": PROOF_KEY,
        }
    )
    with app.app_context():
        report = verify_chain()
        db.session.remove()
        db.engine.dispose()
    assert report.intact, report.problem
    assert report.checked == expected_records


# A worker writes its waiting page views every second; on a machine shared with other test
# runs its thread may write a little later.
UNWRITTEN_VIEWS_SECONDS = 3.0


def views_accepted_just_before(result: LoadResult, moment: float) -> int:
    """The views answered in the last few seconds before ``moment``: those the killed worker
    may still have held unwritten."""
    since = moment - UNWRITTEN_VIEWS_SECONDS
    return sum(
        1 for reader in result.readers for at in reader.views.accepted_at if since <= at <= moment
    )


def assert_no_errors_logged(server: Server) -> None:
    log = server.log_text()
    assert "Traceback" not in log, log[-4000:]


def test_thousands_of_choices_and_beacons_are_each_stored_once(database_uri, tmp_path: Path):
    with running_gunicorn(database_uri, tmp_path, SERVER_SETTINGS) as server:
        result = run_load(server.port, SECRET_KEY, READERS, ROUNDS)
        assert_no_errors_logged(server)
    assert_everything_answered(result, ROUNDS)
    assert result.total("consents", "sent") + result.total("views", "sent") >= 2 * READERS * ROUNDS
    assert_exactly_one_record_per_accepted_request(result, database_uri)
    assert_chain_verifies(database_uri, result.total("consents", "accepted"))


def test_sighup_reload_under_load_drops_no_request(database_uri, tmp_path: Path):
    with running_gunicorn(database_uri, tmp_path, SERVER_SETTINGS) as server:
        before = server.wait_for_workers(WORKERS)
        replaced: list[set[int]] = []

        def reload_midway() -> None:
            os.kill(server.master_pid, signal.SIGHUP)
            replaced.append(server.wait_for_workers(WORKERS, exclude=before))

        result = run_load(server.port, SECRET_KEY, READERS, FAULT_ROUNDS, midway=reload_midway)
        assert_no_errors_logged(server)
    assert replaced and not replaced[0] & before, "SIGHUP did not replace the workers"
    assert_everything_answered(result, FAULT_ROUNDS)
    assert_exactly_one_record_per_accepted_request(result, database_uri)
    assert_chain_verifies(database_uri, result.total("consents", "accepted"))


def test_worker_killed_mid_load_is_replaced_and_no_accepted_choice_is_lost(
    database_uri, tmp_path: Path
):
    with running_gunicorn(database_uri, tmp_path, SERVER_SETTINGS) as server:
        victims: list[int] = []
        killed_at: list[float] = []

        def kill_one_worker() -> None:
            victim = min(server.worker_pids())
            killed_at.append(time.monotonic())
            os.kill(victim, signal.SIGKILL)
            victims.append(victim)
            server.wait_for_workers(WORKERS, exclude={victim})

        result = run_load(server.port, SECRET_KEY, READERS, FAULT_ROUNDS, midway=kill_one_worker)
        status, _ = server.get("/healthz")
        assert status == 200
        assert victims and victims[0] not in server.worker_pids()
    stored = stored_consents(database_uri)
    for reader in result.readers:
        assert reader.consent_id is not None
        kept = stored.get(reader.consent_id, 0)
        unanswered = len(reader.consents.failures)
        assert reader.consents.accepted <= kept <= reader.consents.accepted + unanswered
    views = stored_views(database_uri)
    lost = 0
    for reader in result.readers:
        kept = views.get(reader.reader_id, 0)
        assert kept <= reader.views.accepted + len(reader.views.failures)
        lost += max(reader.views.accepted - kept, 0)
    assert lost <= views_accepted_just_before(result, killed_at[0]), (
        "the killed worker lost views older than the ones it had not written yet"
    )
    assert len(result.failures()) <= READERS, "more requests failed than the killed worker held"
    assert_chain_verifies(database_uri, sum(stored.values()))
