"""Several gunicorn workers append to one chain at once, on SQLite and on PostgreSQL,
and the chain still verifies: the append is serialised by the database, and the workers,
each making the proof key file on its first need, all sign with one key."""

from __future__ import annotations

import http.cookiejar
import os
import signal
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from globalupdates import create_app
from globalupdates.consent.proof.chain import append_to_chain
from globalupdates.consent.proof.proof_keys import key_file, read_key_file
from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.consent.proof.verification import verify_chain
from globalupdates.extensions import db
from tests.support.gunicorn_server import running_gunicorn
from tests.support.html import ACCEPT_ALL_BUTTON, select

READERS = 8
CHOICES_PER_READER = 4


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def one_reader(base: str) -> list[int]:
    """Make several choices as one reader with their own cookies; return the statuses."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
    )
    statuses = []
    for index in range(CHOICES_PER_READER):
        with opener.open(f"{base}/consent", timeout=30) as page:
            assert select(page.read().decode(), ACCEPT_ALL_BUTTON)
        action = ("accept_all", "reject_all")[index % 2]
        body = urllib.parse.urlencode({"action": action}).encode()
        post = urllib.request.Request(
            f"{base}/consent", data=body, headers={"Sec-Fetch-Site": "same-origin"}
        )
        try:
            with opener.open(post, timeout=30) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    return statuses


def choice_sent_with(base: str, headers: dict[str, str]) -> int:
    """A first choice posted with these request headers and no cookie; returns the status."""
    request = urllib.request.Request(f"{base}/consent", data=b"action=accept_all", headers=headers)
    opener = urllib.request.build_opener(NoRedirect())
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def choose_concurrently(base: str) -> list[int]:
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        results = list(pool.map(one_reader, [base] * READERS))
    return [status for statuses in results for status in statuses]


def assert_chain_is_whole(database_uri: str, tmp_path: Path) -> None:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "SECRET_KEY": "chain-test-secret",
        }
    )
    with app.app_context():
        report = verify_chain()
        count = db.session.scalar(db.select(db.func.count(ConsentRecord.id)))
        links = db.session.scalars(db.select(ConsentRecord.prev_hash)).all()
        key_ids = set(db.session.scalars(db.select(ConsentRecord.key_id)))
        db.session.remove()
        db.engine.dispose()
    assert report.intact, report.problems
    assert count == READERS * CHOICES_PER_READER + 1 == report.checked
    assert len(set(links)) == len(links), "two records were linked to the same head"
    [key] = read_key_file(key_file(app))
    assert key_ids == {key.key_id}, "the workers signed with different keys"
    assert key_file(app).stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_concurrent_choices_keep_one_chain(database_uri, tmp_path, monkeypatch):
    """Three workers append at once; on every database the chain stays one line."""
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    server_settings = {
        "WEB_CONCURRENCY": "3",
        "FLASK_RATELIMIT_CONSENT_PER_ADDRESS": "100000 per minute",
    }
    with running_gunicorn(database_uri, tmp_path, server_settings) as server:
        base = server.base_url
        statuses = choose_concurrently(base)
        forged = [
            choice_sent_with(base, {"Sec-Fetch-Site": "cross-site"}),
            choice_sent_with(base, {"Origin": "http://127.0.0.1:1"}),
            choice_sent_with(base, {"Origin": "http://evil.example"}),
        ]
        own = choice_sent_with(base, {"Origin": base})
    assert statuses == [303] * (READERS * CHOICES_PER_READER)
    assert forged == [403, 403, 403]
    assert own == 303
    assert_chain_is_whole(database_uri, tmp_path)


def test_verify_and_prune_on_every_database(database_uri, tmp_path, monkeypatch):
    """The operator's commands behave the same on PostgreSQL as on SQLite."""
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "SECRET_KEY": "k"})
    runner = app.test_cli_runner()
    try:
        with app.app_context():
            start = datetime(2026, 3, 1, tzinfo=UTC)
            for day in range(4):
                append_to_chain(
                    consent_id=str(uuid.uuid4()),
                    created_at=start + timedelta(days=day),
                    action="reject_all",
                    categories=["necessary"],
                    revision=1,
                    notice_hash="b" * 64,
                    gpc=day % 2 == 0,
                )
        pruned = runner.invoke(args=["consent", "prune", "--before", "2026-03-02T12:00", "--yes"])
        assert "Pruned 2 record(s)" in pruned.output, pruned.output
        assert runner.invoke(args=["consent", "verify"]).exit_code == 0
        with app.app_context():
            db.session.execute(db.text("UPDATE consent_record SET gpc = NOT gpc WHERE id = 4"))
            db.session.commit()
        broken = runner.invoke(args=["consent", "verify"])
        assert broken.exit_code != 0 and "record 4 was altered" in broken.output
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.slow
def test_a_key_file_removed_under_running_workers_is_an_outage(database_uri, tmp_path, monkeypatch):
    """The key file is removed while three workers run and a new worker starts: no worker
    signs (every choice a 503, never a 500), none makes a new key under the old id, and
    /healthz names the file; once it is put back, choices are stored again and the chain
    verifies with one secret per key id."""
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    server_settings = {
        "WEB_CONCURRENCY": "3",
        "FLASK_RATELIMIT_CONSENT_PER_ADDRESS": "100000 per minute",
    }
    path = tmp_path / "instance" / "consent_proof_keys"
    with running_gunicorn(database_uri, tmp_path, server_settings) as server:
        base = server.base_url
        assert choose_concurrently(base) == [303] * (READERS * CHOICES_PER_READER)
        kept = path.read_bytes()
        path.unlink()
        old_workers = server.worker_pids()
        os.kill(min(old_workers), signal.SIGKILL)
        server.wait_for_workers(3, exclude={min(old_workers)})

        during = choose_concurrently(base)
        health_status, health = server.get("/healthz")
        outage_page = choice_page(base)
        assert not path.exists(), "a worker made a new key file"

        path.write_bytes(kept)
        path.chmod(0o600)
        after = choose_concurrently(base)
    assert during == [503] * (READERS * CHOICES_PER_READER)
    assert health_status == 503 and '"failed":"proof_keys"' in health.replace(" ", "")
    assert str(path) in server.log_text() and "proof keys cannot sign" in server.log_text()
    assert outage_page == (503, True)
    assert after == [303] * (READERS * CHOICES_PER_READER)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "SECRET_KEY": "k"})
    with app.app_context():
        report = verify_chain()
        db.session.remove()
        db.engine.dispose()
    assert report.intact, report.problems
    assert report.checked == 2 * READERS * CHOICES_PER_READER


def choice_page(base: str) -> tuple[int, bool]:
    """A choice posted by a browser: its status, and whether the page says the site is down."""
    request = urllib.request.Request(
        f"{base}/consent",
        data=b"action=accept_all",
        headers={"Sec-Fetch-Site": "same-origin", "Accept": "text/html"},
    )
    try:
        with urllib.request.build_opener(NoRedirect()).open(request, timeout=30) as answer:
            return answer.status, False
    except urllib.error.HTTPError as error:
        return error.code, "unavailable" in error.read().decode()
