"""The database going away: a clear 503, never a stack trace, and recovery without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.databases import PostgresTestDatabase, libpq_conninfo
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.pages import ARTICLE
from tests.support.tcp_proxy import CuttableRelay

OUTAGE_MESSAGE = "cannot reach its database"


def assert_clear_503(status: int, body: str) -> None:
    assert status == 503
    assert OUTAGE_MESSAGE in body
    assert "Traceback" not in body and "sqlalchemy" not in body.lower()


def wait_until_healthy(get, timeout: float = 20) -> float:
    """Seconds until /healthz answered 200 again, asking as a load balancer would."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status, _ = get("/healthz")
        if status == 200:
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"the site did not recover within {timeout} s")


def test_sqlite_file_missing_gives_503_then_recovers(
    app_factory, migrated_sqlite: Path, tmp_path: Path
):
    """SQLite's outage is its file gone (a volume unmounted); put back, the site carries on."""
    volume = tmp_path / "volume"
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{volume / 'site.sqlite3'}")
    client = app.test_client()

    def get(path: str) -> tuple[int, str]:
        response = client.get(path, headers={"Accept": "text/html"})
        return response.status_code, response.get_data(as_text=True)

    status, body = get("/healthz")
    assert status == 503 and '"database":"unreachable"' in body.replace(" ", "")
    assert_clear_503(*get(ARTICLE))
    volume.mkdir()
    shutil.copyfile(migrated_sqlite, volume / "site.sqlite3")
    wait_until_healthy(get)
    assert get("/")[0] == 200


def postgres_behind_relay(database_uri: str, relay: CuttableRelay) -> str:
    url = make_url(database_uri)
    return url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)


@pytest.mark.slow
@pytest.mark.postgresql
def test_postgresql_unreachable_gives_503_then_recovers(
    migrated_postgres: PostgresTestDatabase, tmp_path: Path
):
    migrated_postgres.empty_tables()
    database_uri = migrated_postgres.sqlalchemy_uri
    url = make_url(database_uri)
    with CuttableRelay((url.host or "127.0.0.1", url.port or 5432)) as relay:
        relayed = postgres_behind_relay(database_uri, relay)
        with running_gunicorn(relayed, tmp_path, {"WEB_CONCURRENCY": "2"}) as server:
            assert server.get(ARTICLE)[0] == 200
            workers = server.wait_for_workers(2)  # one may answer before the other has booted
            relay.cut()
            assert "unreachable" in server.wait_for_status("/healthz", 503)
            # A page a worker already keeps in memory may still be served from there; one it
            # must build asks the database, and says clearly that it cannot reach it.
            for attempt in range(4):
                assert_clear_503(*server.get(f"{ARTICLE}?during-outage={attempt}"))
            status, body = server.get(ARTICLE)
            if status != 200:
                assert_clear_503(status, body)
            relay.restore()
            wait_until_healthy(server.get)
            assert server.get(ARTICLE)[0] == 200
            assert server.worker_pids() == workers, "recovery should not need new workers"
            assert_no_stack_trace_logged(server)


def assert_no_stack_trace_logged(server: Server) -> None:
    assert "Traceback" not in server.log_text()


# The database restarted under running workers, whose pools hold connections it dropped.


def post_choice(server: Server) -> int:
    connection = server.connection(timeout=30)
    try:
        connection.request(
            "POST",
            "/consent",
            body="action=accept_all",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Sec-Fetch-Site": "same-origin",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def drop_every_connection(database_uri: str, migrated_sqlite: Path) -> None:
    """What a restart does to the site's pooled connections: PostgreSQL closes every one of
    them (an administrator's shutdown, as in a restart); a SQLite file is removed and put
    back, as a restore from backup does."""
    url = make_url(database_uri)
    if url.drivername.startswith("sqlite"):
        path = Path(url.database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(migrated_sqlite, path)
        return
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert dropped, "the workers held no connection to drop"


@pytest.mark.slow
def test_after_the_database_drops_every_connection_the_next_choices_are_stored(
    database_uri: str, migrated_sqlite: Path, tmp_path: Path
):
    """Each worker's pool holds connections the database no longer knows; the first choices
    after that are stored all the same, without a restart of the site: on PostgreSQL the
    pool pings a connection before handing it out, on SQLite the file is checked."""
    with running_gunicorn(database_uri, tmp_path, {"WEB_CONCURRENCY": "3"}) as server:
        workers = server.wait_for_workers(3)
        assert [post_choice(server) for _ in range(12)] == [303] * 12
        drop_every_connection(database_uri, migrated_sqlite)
        assert [post_choice(server) for _ in range(12)] == [303] * 12
        assert server.get("/healthz")[0] == 200
        assert server.worker_pids() == workers
    assert_no_stack_trace_logged(server)
