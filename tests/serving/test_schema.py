"""The committed migrations and the models describe the same schema on every database."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from flask_migrate import check

from globalupdates.extensions import db


def pending_schema_changes(app) -> bool:
    """Run Flask-Migrate's own check (what ``flask db check`` runs): any pending diff exits 1."""
    with app.app_context():
        try:
            check(directory=app.config["MIGRATIONS_DIR"])
        except SystemExit as stop:
            return stop.code not in (0, None)
        finally:
            db.engine.dispose()
    return False


def test_models_and_migrations_agree(app_factory, database_uri):
    """An autogenerate run against the migrated database would find nothing to write."""
    backend = database_uri.split(":", 1)[0]
    assert not pending_schema_changes(app_factory()), f"models differ from migrations on {backend}"


def test_the_check_notices_a_schema_that_drifted(
    app_factory, migrated_sqlite: Path, tmp_path: Path
):
    """Without this, a check that compared nothing would pass the test above."""
    drifted = tmp_path / "drifted.sqlite3"
    shutil.copyfile(migrated_sqlite, drifted)
    with sqlite3.connect(drifted) as connection:
        connection.execute("DROP INDEX ix_page_view_path")
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{drifted}")
    assert pending_schema_changes(app)


def test_postgresql_runs_when_configured(database_uri, request):
    """With TEST_DATABASE_URL set, this very test has a PostgreSQL twin; without it, SQLite only."""
    from tests.support.databases import configured_postgres_url

    backend = database_uri.split(":", 1)[0].split("+", 1)[0]
    expected = {"sqlite", "postgresql"} if configured_postgres_url() else {"sqlite"}
    assert backend in expected
    assert request.node.callspec.params["database_uri"] == backend
