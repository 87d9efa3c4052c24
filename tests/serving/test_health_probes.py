"""/healthz tells the truth: it fails, naming the check, whenever a reader would meet an outage
(a revoked privilege, a full disk, the proof keys unusable), and it recovers by itself once the
fault is gone. Its probe runs at most once a second per worker."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from psycopg import sql
from sqlalchemy import event

from globalupdates.consent import proofkeys
from globalupdates.extensions import db
from tests.serving.test_database_outages import assert_clear_503, healthz, stored_choices
from tests.support.consent import choose
from tests.support.databases import PostgresTestDatabase
from tests.support.pages import ARTICLE

PROBE_SECONDS = 1.0


@pytest.fixture
def sites(app_on):
    """Apps without rate limits, probing at the default interval of one second."""

    def make(database_uri: str, **extra: object) -> Flask:
        return app_on(
            database_uri, RATELIMIT_ENABLED=False, HEALTH_CHECK_SECONDS=PROBE_SECONDS, **extra
        )

    return make


def wait_for_health(app: Flask, status: int, timeout: float = 5) -> tuple[float, dict]:
    """Ask /healthz as a load balancer would, every 0.1 s, until it answers ``status``; the
    seconds that took and the last report."""
    started = time.monotonic()
    while True:
        answer, report = healthz(app)
        waited = time.monotonic() - started
        if answer == status:
            return waited, report
        assert waited < timeout, f"/healthz still answers {answer} {report} after {timeout} s"
        time.sleep(0.1)


def statements_run(app: Flask) -> list[str]:
    """Every statement the app's engine sends from now on."""
    sent: list[str] = []
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def note(_conn, _cursor, statement, _params, _context, _many):
        sent.append(statement)

    return sent


def test_the_probe_runs_at_most_once_per_interval(sites, database_uri: str):
    app = sites(database_uri)
    sent = statements_run(app)
    started = time.monotonic()
    answers = [healthz(app)[0] for _ in range(30)]
    elapsed = time.monotonic() - started
    assert answers == [200] * 30
    assert elapsed < PROBE_SECONDS, "the burst took too long to show the memo"
    probes = [statement for statement in sent if statement.startswith("INSERT INTO consent_record")]
    assert len(probes) == 1, sent

    time.sleep(PROBE_SECONDS)
    assert healthz(app)[0] == 200
    probes = [statement for statement in sent if statement.startswith("INSERT INTO consent_record")]
    assert len(probes) == 2


# PostgreSQL: the site's role loses a privilege.


@pytest.fixture
def site_role(migrated_postgres: PostgresTestDatabase) -> Iterator[tuple[str, psycopg.Connection]]:
    """A login role of this test's own with the privileges a site needs on the test database,
    and an administrator's connection to revoke and grant them again. The site connects as the
    role, whose URI comes first."""
    migrated_postgres.empty_tables()
    role = f"gu_site_{secrets.token_hex(4)}"
    name = sql.Identifier(role)
    with migrated_postgres.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
        admin.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(name)
        )
        admin.execute(
            sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(
                name
            )
        )
        try:
            yield migrated_postgres.url.set(username=role).render_as_string(False), admin
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
            )
            admin.execute(sql.SQL("DROP OWNED BY {}").format(name))
            admin.execute(sql.SQL("DROP ROLE {}").format(name))


def change_privilege(admin: psycopg.Connection, statement: str, table: str, role_uri: str) -> None:
    role = role_uri.split("://", 1)[1].split("@", 1)[0]
    admin.execute(sql.SQL(statement).format(sql.Identifier(table), sql.Identifier(role)))


@pytest.mark.postgresql
def test_a_revoked_insert_on_the_records_is_an_outage_until_granted_again(sites, site_role):
    role_uri, admin = site_role
    app = sites(role_uri)
    client = app.test_client()
    assert choose(client, "accept_all").status_code == 303
    assert wait_for_health(app, 200)[1]["writes"] == "ok"

    change_privilege(admin, "REVOKE INSERT ON {} FROM {}", "consent_record", role_uri)
    assert_clear_503(choose(client, "reject_all"))
    _, report = wait_for_health(app, 503)
    assert report["failed"] == "writes" and report["writes"] == "refused"

    change_privilege(admin, "GRANT INSERT ON {} TO {}", "consent_record", role_uri)
    waited, _ = wait_for_health(app, 200)
    assert waited <= PROBE_SECONDS + 0.5
    assert choose(client, "reject_all").status_code == 303


@pytest.mark.postgresql
def test_a_revoked_select_on_articles_is_an_outage_until_granted_again(sites, site_role):
    role_uri, admin = site_role
    app = sites(role_uri)
    from globalupdates.articles.importer import import_paths
    from tests.support.apps import CONTENT_DIR

    with app.app_context():
        import_paths([CONTENT_DIR])
    client = app.test_client()
    assert client.get(ARTICLE).status_code == 200

    change_privilege(admin, "REVOKE SELECT ON {} FROM {}", "article", role_uri)
    assert_clear_503(client.get(f"{ARTICLE}?fresh=1", headers={"Accept": "text/html"}))
    _, report = wait_for_health(app, 503)
    assert report["failed"] == "reads" and report["reads"] == "refused"

    change_privilege(admin, "GRANT SELECT ON {} TO {}", "article", role_uri)
    wait_for_health(app, 200)
    assert client.get(f"{ARTICLE}?fresh=2").status_code == 200


# SQLite: the folder of the database is full.


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of this test's own: a real file system that fills up. Mounting needs root,
    as the tests run here and in CI; anywhere else this fails, it does not skip."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write zeros into ``folder`` until the file system refuses (ENOSPC)."""
    filler = folder / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as output:
        try:
            while True:
                output.write(block)
                output.flush()
        except OSError as error:
            assert error.errno == 28, error
    return filler


def test_a_full_disk_under_sqlite_is_an_outage_until_space_is_freed(
    sites, small_disk: Path, migrated_sqlite: Path
):
    path = small_disk / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    app = sites(f"sqlite:///{path}")
    client = app.test_client()
    assert choose(client, "accept_all").status_code == 303
    assert wait_for_health(app, 200)[1]["writes"] == "ok"

    filler = fill(small_disk)
    assert_clear_503(choose(client, "reject_all"))
    _, report = wait_for_health(app, 503)
    assert report["failed"] == "writes" and report["writes"] == "full"

    filler.unlink()
    waited, _ = wait_for_health(app, 200)
    assert waited <= PROBE_SECONDS + 0.5
    assert choose(client, "reject_all").status_code == 303
    assert stored_choices(path) == 2


# The proof keys: the check asks them through ``proofkeys.key_file_problem``.


def test_healthz_names_the_proof_key_when_the_key_file_cannot_sign(
    sites, database_uri: str, monkeypatch: pytest.MonkeyPatch
):
    """The health check asks ``proofkeys.key_file_problem(app)`` (the proof keys' own verdict,
    which says when a missing or emptied key file is an outage); here it is given one that
    judges the file as that verdict would for an emptied file."""

    def key_file_problem(app: Flask) -> str | None:
        keys = proofkeys.key_file(app)
        if keys.exists() and not proofkeys.read_key_file(keys):
            return f"{keys} holds no key"
        return None

    monkeypatch.setattr(proofkeys, "key_file_problem", key_file_problem, raising=False)
    app = sites(database_uri)
    assert choose(app.test_client(), "accept_all").status_code == 303
    assert wait_for_health(app, 200)[1]["proof_keys"] == "ok"

    keys = proofkeys.key_file(app)
    original = keys.read_text()
    keys.write_text("# emptied\n")
    _, report = wait_for_health(app, 503)
    assert report["failed"] == "proof_keys" and report["proof_keys"] == "unusable"

    keys.write_text(original)
    wait_for_health(app, 200)
