"""Several gunicorn workers append to one chain at once, on SQLite and on PostgreSQL,
and the chain still verifies: the append is serialised by the database."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from globalupdates import create_app
from globalupdates.config import PROJECT_ROOT
from globalupdates.consent.chain import verify_chain
from globalupdates.consent.records import ConsentRecord
from globalupdates.extensions import db

READERS = 8
CHOICES_PER_READER = 4
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn stopped early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer in time:\n{log.read_text()[-3000:]}")


def serve(database_uri: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "3",
        "GUNICORN_ACCESSLOG": "/dev/null",
        "FLASK_SQLALCHEMY_DATABASE_URI": database_uri,
        "FLASK_SECRET_KEY": "chain-test-secret",
        "FLASK_INSTANCE_PATH": str(tmp_path / "instance"),
        "FLASK_RATELIMIT_CONSENT_PER_ADDRESS": "100000 per minute",
    }
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.read().decode())
        assert token is not None
        action = ("accept_all", "reject_all")[index % 2]
        body = urllib.parse.urlencode({"csrf_token": token.group(1), "action": action}).encode()
        try:
            with opener.open(f"{base}/consent", data=body, timeout=30) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    return statuses


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
        db.session.remove()
        db.engine.dispose()
    assert report.intact, report.problem
    assert count == READERS * CHOICES_PER_READER == report.checked
    assert len(set(links)) == len(links), "two records were linked to the same head"


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    name = f"gu_chain_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_chain_race(database_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    for base in serve(database_uri, tmp_path):
        statuses = choose_concurrently(base)
    assert statuses == [303] * (READERS * CHOICES_PER_READER)
    assert_chain_is_whole(database_uri, tmp_path)


def test_concurrent_choices_keep_one_chain_on_sqlite(tmp_path, monkeypatch):
    run_chain_race(f"sqlite:///{tmp_path}/race.sqlite3", tmp_path, monkeypatch)


def test_concurrent_choices_keep_one_chain_on_postgresql(postgres_uri, tmp_path, monkeypatch):
    run_chain_race(postgres_uri, tmp_path, monkeypatch)


def test_verify_and_prune_on_postgresql(postgres_uri, tmp_path, monkeypatch):
    """The operator's commands behave the same on PostgreSQL as on SQLite."""
    from datetime import UTC, datetime, timedelta

    from flask_migrate import upgrade

    from globalupdates.consent.chain import append_to_chain

    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": postgres_uri, "SECRET_KEY": "k"})
    runner = app.test_cli_runner()
    try:
        with app.app_context():
            upgrade(directory=app.config["MIGRATIONS_DIR"])
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
