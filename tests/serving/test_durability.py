"""A choice is on disk before its answer leaves: SQLite commits with ``synchronous=FULL``."""

from __future__ import annotations

from sqlalchemy import event

from globalupdates.extensions import db
from tests.support.consent import choose

SQLITE_SYNCHRONOUS_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_the_connection_that_stores_a_choice_fsyncs_each_commit(app_on, migrated_sqlite, tmp_path):
    """Read the level from the very connection that inserted the record, while it does."""
    path = tmp_path / "site.sqlite3"
    path.write_bytes(migrated_sqlite.read_bytes())
    app = app_on(f"sqlite:///{path}")
    levels: list[int] = []

    def read_level(_conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CONSENT_RECORD"):
            levels.append(cursor.connection.execute("PRAGMA synchronous").fetchone()[0])

    with app.app_context():
        event.listen(db.engine, "after_cursor_execute", read_level)
    assert choose(app.test_client(), "accept_all").status_code == 303
    assert levels and set(levels) == {SQLITE_SYNCHRONOUS_FULL}
