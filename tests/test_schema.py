"""The committed migrations and the models describe the same schema on every database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from globalupdates.extensions import db


def test_models_and_migrations_agree(app_factory, database_uri):
    """An autogenerate run against the migrated database would find nothing to write."""
    app = app_factory()
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models differ from migrations on {database_uri.split(':')[0]}"


def test_postgresql_runs_when_configured(database_uri, request):
    """With TEST_DATABASE_URL set, this very test has a PostgreSQL twin; without it, SQLite only."""
    from database_backends import configured_postgres_url

    backend = database_uri.split(":", 1)[0].split("+", 1)[0]
    expected = {"sqlite", "postgresql"} if configured_postgres_url() else {"sqlite"}
    assert backend in expected
    assert request.node.callspec.params["database_uri"] == backend
