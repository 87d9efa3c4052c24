"""The databases the suite runs on: SQLite always, PostgreSQL too when ``TEST_DATABASE_URL`` is set.

``TEST_DATABASE_URL`` names a PostgreSQL server and a database to connect to for
administration (``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Each test run makes a
database of its own beside it, migrates it once, empties it between tests and drops it at
the end, so that runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

TEST_DATABASE_URL = "TEST_DATABASE_URL"
KEPT_TABLES = ("alembic_version",)


def configured_postgres_url() -> str | None:
    return os.environ.get(TEST_DATABASE_URL) or None


def backend_names() -> list[Any]:
    """The parameters of a fixture that gives a test once per database: SQLite, and PostgreSQL
    marked as a PostgreSQL case (``tests/support/postgresql_cases.py`` runs it only when
    ``TEST_DATABASE_URL`` names a server, and says how many did not run)."""
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def libpq_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresTestDatabase:
    """A database made for one test run on the server ``TEST_DATABASE_URL`` points at."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        if not self.admin_url.drivername.startswith("postgresql"):
            raise ValueError(f"{TEST_DATABASE_URL} must be a postgresql URL, not {admin_url!r}")
        base = self.admin_url.database or "test"
        self.name = f"{base}_gu_{os.getpid()}_{secrets.token_hex(3)}"
        self.url = self.admin_url.set(database=self.name)

    @property
    def sqlalchemy_uri(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                libpq_conninfo(self.admin_url), autocommit=True, connect_timeout=5
            )
        except psycopg.OperationalError as error:
            raise RuntimeError(
                f"{TEST_DATABASE_URL} is set but PostgreSQL at "
                f"{self.admin_url.render_as_string(hide_password=True)} cannot be reached: {error}"
            ) from error

    def create(self) -> None:
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with self._admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(libpq_conninfo(self.url), autocommit=True, connect_timeout=5)

    def empty_tables(self) -> None:
        """Remove every row and restart every id sequence; the schema stays as migrated."""
        with self.connect() as conn:
            conn.execute("SET lock_timeout = '10s'")
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
                if row[0] not in KEPT_TABLES
            ]
            if names:
                conn.execute(
                    sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                        sql.SQL(", ").join(sql.Identifier(name) for name in names)
                    )
                )
