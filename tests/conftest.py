"""Fixtures: a real app on a database built by the committed migrations, its test client and
CLI runner. The helpers tests import are in ``tests/support``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from hypothesis import settings

from globalupdates import create_app
from globalupdates.articles.importer import import_paths
from tests.support.apps import (
    CONTENT_DIR,
    STATIC_DIR,
    app_config,
    compile_static,
    static_manifest_is_stale,
)
from tests.support.databases import PostgresTestDatabase, backend_names, configured_postgres_url

# Every app reads the manifest when it is created; ``make test`` compiles it first, and a
# bare ``pytest`` (on a fresh clone, or after a static file changed) compiles it here,
# before any test builds an app.
if static_manifest_is_stale(STATIC_DIR):
    compile_static(STATIC_DIR)

# Counts the PostgreSQL cases, says at the end how many did not run, and with
# --require-postgresql (CI) fails the run when any did not.
pytest_plugins = ["pytester", "tests.support.postgresql_cases"]

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file made by running every migration, copied for each test."""
    folder = tmp_path_factory.mktemp("template-db")
    path = folder / "template.sqlite3"
    app = create_app(app_config(f"sqlite:///{path}", folder))
    with app.app_context():
        upgrade(directory=app.config["MIGRATIONS_DIR"])
        from globalupdates.extensions import db

        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresTestDatabase]:
    """This run's own PostgreSQL database, migrated once and dropped at the end."""
    admin_url = configured_postgres_url()
    assert admin_url, "only reached when TEST_DATABASE_URL is set"
    database = PostgresTestDatabase(admin_url)
    database.create()
    try:
        folder = tmp_path_factory.mktemp("template-pg")
        app = create_app(app_config(database.sqlalchemy_uri, folder))
        with app.app_context():
            upgrade(directory=app.config["MIGRATIONS_DIR"])
            from globalupdates.extensions import db

            db.engine.dispose()
        yield database
    finally:
        database.drop()


@pytest.fixture(params=backend_names())
def database_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set."""
    if request.param == "postgresql":
        database: PostgresTestDatabase = request.getfixturevalue("migrated_postgres")
        database.empty_tables()
        return database.sqlalchemy_uri
    migrated_sqlite: Path = request.getfixturevalue("migrated_sqlite")
    path = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Build apps on any database URI, extra settings overriding the defaults; their engines
    are closed after the test."""
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    made: list[Flask] = []

    def make(database_uri: str, **extra: object) -> Flask:
        app = create_app(app_config(database_uri, tmp_path, **extra))
        made.append(app)
        return app

    yield make
    from globalupdates.extensions import db
    from globalupdates.features.pageviews import close_page_views

    for app in made:
        close_page_views(app)  # written now, not into the next test's database
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app_factory(database_uri: str, app_on):
    """Build an app on this test's database; extra settings override the defaults."""

    def make(**extra: object) -> Flask:
        return app_on(database_uri, **extra)

    return make


@pytest.fixture
def app(app_factory) -> Iterator[Flask]:
    app = app_factory()
    with app.app_context():
        import_paths([CONTENT_DIR])
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()
