"""A database that is there but cannot take a choice: its file removed or replaced under the
running site, its tables missing or one migration behind, or its writes refused. Every
choice then gets a clear 503, never a 200 that stores nothing, and /healthz says so."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy.exc import InternalError, ProgrammingError

from globalupdates import health
from globalupdates.config import PROJECT_ROOT
from globalupdates.extensions import db
from globalupdates.prepare import prepare_site
from tests.support.consent import choose
from tests.support.databases import PostgresTestDatabase, backend_names, configured_postgres_url
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.pages import ARTICLE

OUTAGE_MESSAGE = "cannot reach its database"
MIGRATIONS_DIR = str(PROJECT_ROOT / "migrations")


def assert_clear_503(response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body[:300]
    assert OUTAGE_MESSAGE in body
    assert "Traceback" not in body


def healthz(app: Flask) -> tuple[int, dict]:
    response = app.test_client().get("/healthz")
    return response.status_code, response.get_json()


def stored_choices(path: Path) -> int:
    """Consent records in the SQLite file at ``path``, read by a connection of our own."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT COUNT(*) FROM consent_record").fetchone()[0]
    finally:
        connection.close()


def remove_database(path: Path) -> None:
    """What ``rm instance/globalupdates.sqlite3*`` does: the file, its WAL and its index."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def sites(app_on):
    """Build apps on any database URI (with extra settings), without rate limits."""

    def make(database_uri: str, **extra: object) -> Flask:
        return app_on(database_uri, RATELIMIT_ENABLED=False, **extra)

    return make


@pytest.fixture
def sqlite_copy(migrated_sqlite: Path, tmp_path: Path) -> Path:
    path = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    return path


# The SQLite file removed or replaced while the site runs.


@pytest.mark.health_follows_at_once
def test_choices_are_refused_while_the_file_is_missing_then_land_in_the_copy_put_back(
    sites, sqlite_copy: Path, migrated_sqlite: Path
):
    app = sites(f"sqlite:///{sqlite_copy}")
    client = app.test_client()
    assert choose(client, "accept_all").status_code == 303
    assert stored_choices(sqlite_copy) == 1

    remove_database(sqlite_copy)
    assert_clear_503(choose(client, "reject_all"))
    status, report = healthz(app)
    assert status == 503 and report["failed"] == "database"
    assert not sqlite_copy.exists(), "an empty database was made in place of the missing one"

    shutil.copyfile(migrated_sqlite, sqlite_copy)
    assert healthz(app)[0] == 200
    assert choose(client, "reject_all").status_code == 303
    assert stored_choices(sqlite_copy) == 1


def test_the_choice_after_the_file_is_replaced_lands_in_the_new_file(
    sites, sqlite_copy: Path, migrated_sqlite: Path, tmp_path: Path
):
    app = sites(f"sqlite:///{sqlite_copy}")
    client = app.test_client()
    assert choose(client, "accept_all").status_code == 303
    replacement = tmp_path / "replacement.sqlite3"
    shutil.copyfile(migrated_sqlite, replacement)
    remove_database(sqlite_copy)
    os.replace(replacement, sqlite_copy)

    assert choose(client, "reject_all").status_code == 303
    assert stored_choices(sqlite_copy) == 1


def test_prepare_makes_a_new_file_that_the_running_site_then_uses(sites, sqlite_copy: Path):
    """The running site never creates a database in place of a missing file, but
    ``flask prepare`` (a process that never saw the file) still makes a new one."""
    uri = f"sqlite:///{sqlite_copy}"
    app = sites(uri)
    client = app.test_client()
    assert choose(client, "accept_all").status_code == 303
    remove_database(sqlite_copy)
    assert_clear_503(choose(client, "accept_all"))
    assert not sqlite_copy.exists()

    prepare_site(sites(uri))
    assert choose(client, "accept_all").status_code == 303
    assert stored_choices(sqlite_copy) == 1
    assert client.get(ARTICLE).status_code == 200


# The schema missing or behind, and writes refused: on SQLite and on PostgreSQL.


@pytest.fixture(params=backend_names())
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: an empty SQLite file, or a PostgreSQL database
    just created (as when one is dropped and created again)."""
    if request.param == "sqlite":
        path = tmp_path / "empty.sqlite3"
        sqlite3.connect(path).close()
        yield f"sqlite:///{path}"
        return
    admin_url = configured_postgres_url()
    assert admin_url
    database = PostgresTestDatabase(admin_url)
    database.create()
    try:
        yield database.sqlalchemy_uri
    finally:
        database.drop()


def test_without_tables_health_pages_and_choices_answer_503(sites, empty_database: str):
    app = sites(empty_database)
    client = app.test_client()
    status, report = healthz(app)
    assert status == 503
    assert report == {
        "status": "unavailable",
        "failed": "schema",
        "database": "ok",
        "schema": "missing",
    }
    assert_clear_503(client.get("/", headers={"Accept": "text/html"}))
    assert_clear_503(client.get(ARTICLE, headers={"Accept": "text/html"}))
    assert_clear_503(choose(client, "accept_all"))


@pytest.mark.health_follows_at_once
def test_healthz_answers_503_with_the_schema_one_migration_behind(sites, empty_database: str):
    app = sites(empty_database)
    head = ScriptDirectory(MIGRATIONS_DIR).get_current_head()
    assert head is not None
    previous = ScriptDirectory(MIGRATIONS_DIR).get_revision(head).down_revision
    assert isinstance(previous, str)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision=previous)
        db.engine.dispose()
    status, report = healthz(app)
    assert status == 503
    assert report["failed"] == "schema" and report["schema"] == "outdated"

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        db.engine.dispose()
    assert healthz(app)[0] == 200


def read_only(database_uri: str) -> tuple[str, dict[str, object]]:
    """The URI and settings that open ``database_uri`` read-only, as an immutable file or a
    PostgreSQL standby would be (file modes do not stop root, so they make no test)."""
    if database_uri.startswith("sqlite"):
        path = database_uri.removeprefix("sqlite:///")
        return f"sqlite:///file:{path}?mode=ro&uri=true", {}
    options = {"options": "-c default_transaction_read_only=on"}
    return database_uri, {
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "connect_args": options}
    }


def test_healthz_answers_503_when_a_write_transaction_cannot_start(sites, database_uri: str):
    uri, settings = read_only(database_uri)
    app = sites(uri, **settings)
    status, report = healthz(app)
    assert status == 503
    assert report["failed"] == "writes" and report["writes"] == "refused"
    assert report["schema"] == "ok"
    assert_clear_503(choose(app.test_client(), "accept_all"))


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ProgrammingError("SELECT", {}, DriverError("42P01")), 503),  # no such table
        (ProgrammingError("SELECT", {}, DriverError("42703")), 503),  # no such column
        (InternalError("INSERT", {}, DriverError("25006")), 503),  # read-only transaction
        (ProgrammingError("SELECT", {}, DriverError("42601")), 500),  # a syntax error
        (InternalError("SELECT", {}, DriverError("XX000")), 500),
    ],
)
def test_only_a_missing_schema_or_refused_writes_count_as_an_outage(
    sites, sqlite_copy: Path, error: Exception, status: int
):
    app = sites(f"sqlite:///{sqlite_copy}", PROPAGATE_EXCEPTIONS=False)

    @app.get("/raises")
    def raises():
        raise error

    response = app.test_client().get("/raises", headers={"Accept": "text/html"})
    assert response.status_code == status
    assert "Traceback" not in response.get_data(as_text=True)


# The head the health check expects, read without alembic.


def write_migration(folder: Path, name: str, lines: str) -> None:
    (folder / "versions" / f"{name}.py").write_text(lines, encoding="utf-8")


def test_migration_heads_agree_with_alembic(tmp_path: Path):
    assert health.migration_heads(MIGRATIONS_DIR) == set(
        ScriptDirectory(MIGRATIONS_DIR).get_heads()
    )

    branchy = tmp_path / "migrations"
    (branchy / "versions").mkdir(parents=True)
    write_migration(branchy, "a", 'revision = "a1"\ndown_revision = None\n')
    write_migration(branchy, "b", 'revision: str = "b2"\ndown_revision: str | None = "a1"\n')
    write_migration(branchy, "c", 'revision = "c3"\ndown_revision = "a1"\n')
    write_migration(branchy, "d", 'revision = "d4"\ndown_revision = ("b2", "c3")\n')
    write_migration(branchy, "e", 'revision = "e5"\ndown_revision = "a1"\n')
    assert health.migration_heads(str(branchy)) == {"d4", "e5"}
    assert health.migration_heads(str(branchy)) == set(ScriptDirectory(str(branchy)).get_heads())


# As the tester saw it: several gunicorn workers, and the file removed under them.


def post_choice(server: Server) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/consent",
        data=b"action=accept_all",
        headers={"Sec-Fetch-Site": "same-origin", "Accept": "text/html"},
    )
    opener = urllib.request.build_opener(NoRedirect())
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        assert error.code != 503 or OUTAGE_MESSAGE in body
        return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_until_healthy(server: Server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while server.get("/healthz")[0] != 200:
        assert time.monotonic() < deadline, "the site did not take the file put back"
        time.sleep(0.2)


@pytest.mark.slow
def test_under_gunicorn_a_removed_file_refuses_choices_then_the_copy_takes_them(
    migrated_sqlite: Path, tmp_path: Path
):
    path = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    choices = 9
    with running_gunicorn(f"sqlite:///{path}", tmp_path, {"WEB_CONCURRENCY": "3"}) as server:
        server.wait_for_workers(3)
        assert [post_choice(server) for _ in range(choices)] == [303] * choices

        remove_database(path)
        assert [post_choice(server) for _ in range(choices)] == [503] * choices
        server.wait_for_status("/healthz", 503)
        assert not path.exists(), "a worker made an empty database in place of the missing one"

        shutil.copyfile(migrated_sqlite, path)
        wait_until_healthy(server)
        assert [post_choice(server) for _ in range(choices)] == [303] * choices
        assert stored_choices(path) == choices
    assert "Traceback" not in server.log_text()
