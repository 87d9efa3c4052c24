"""``/healthz``: 200 only when a reader's choice could be stored now.

Four checks, in order, stopping at the first that fails: the database answers, its schema
is at the head of the committed migrations, a write transaction can start on the table
a choice is written to (then is rolled back, leaving nothing behind), and the proof keys
can sign it. The JSON body names the check that failed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import cache
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, false, text, update
from sqlalchemy.exc import SQLAlchemyError

from .consent.proofkeys import key_file_problem
from .consent.records import ConsentRecord
from .database import error_summary, one_writer
from .errors import is_missing_schema
from .extensions import db

bp = Blueprint("health", __name__)

OK = "ok"
SELECT_ONE = text("SELECT 1")
APPLIED_REVISIONS = text("SELECT version_num FROM alembic_version")
RECORDS = ConsentRecord.__table__
# An update of no row: refused like a real write by a read-only database (SQLite opened
# read-only or on an immutable file, a PostgreSQL standby or read-only transaction), a
# missing table or column, or a revoked privilege; yet it changes nothing, and on
# PostgreSQL it takes no transaction id.
WRITE_PROBE = update(RECORDS).values(id=RECORDS.c.id).where(false())


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    results: dict[str, str] = {}
    try:
        connection = db.engine.connect()
    except SQLAlchemyError as error:
        results["database"] = "unreachable"
        return unavailable("database", results, error_summary(error))
    with connection:
        for name, check in CHECKS:
            outcome, reason = check(connection)
            results[name] = outcome
            if outcome != OK:
                return unavailable(name, results, reason)
    return jsonify(status=OK, **results)


CheckResult = tuple[str, str]  # the outcome, and for a failure the reason to log
PASSED: CheckResult = (OK, "")


def database_answers(connection: Connection) -> CheckResult:
    try:
        connection.execute(SELECT_ONE)
    except SQLAlchemyError as error:
        return "unreachable", error_summary(error)
    return PASSED


def schema_at_head(connection: Connection) -> CheckResult:
    """The revisions alembic recorded are the heads of the migrations this code ships."""
    try:
        applied = set(connection.scalars(APPLIED_REVISIONS))
    except SQLAlchemyError as error:
        connection.rollback()
        return ("missing" if is_missing_schema(error) else "unreadable"), error_summary(error)
    if not applied:
        return "missing", "alembic_version is empty"
    expected = migration_heads(current_app.config["MIGRATIONS_DIR"])
    if applied != expected:
        return (
            "outdated",
            f"at {', '.join(sorted(applied))}, expected {', '.join(sorted(expected))}",
        )
    return PASSED


def write_can_start(connection: Connection) -> CheckResult:
    """Start a write transaction the way a choice does (SQLite: its turn in the writer
    queue, then ``BEGIN IMMEDIATE``), attempt a write, and roll it back."""
    connection.rollback()
    try:
        with one_writer(connection.engine):
            try:
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                connection.execute(WRITE_PROBE)
            finally:
                connection.rollback()
    except SQLAlchemyError as error:
        return "refused", error_summary(error)
    return PASSED


def proof_keys_usable(connection: Connection) -> CheckResult:
    """The key file can sign the next choice (``proofkeys.key_file_problem``)."""
    problem = key_file_problem(current_app)
    return PASSED if problem is None else ("unusable", problem)


CHECKS: tuple[tuple[str, Callable[[Connection], CheckResult]], ...] = (
    ("database", database_answers),
    ("schema", schema_at_head),
    ("writes", write_can_start),
    ("proof_keys", proof_keys_usable),
)


def unavailable(failed: str, results: dict[str, str], reason: str) -> ResponseReturnValue:
    current_app.logger.warning("health check: %s %s: %s", failed, results[failed], reason)
    return jsonify(status="unavailable", failed=failed, **results), 503


@cache
def migration_heads(migrations_dir: str) -> frozenset[str]:
    """The head revisions of the committed migrations, read once per process.

    Found by reading each migration's ``revision`` and ``down_revision`` assignments, not
    with alembic's ``ScriptDirectory``: that imports alembic and every migration module,
    which cost a worker 8.5 MB of private memory, where these few parsed files cost well
    under 1 MB and are freed at once (alembic is kept out of serving processes; see
    ``prepare.bind_migrations``). A test holds the two answers equal.
    """
    parents: dict[str, tuple[str, ...]] = {}
    for path in sorted(Path(migrations_dir, "versions").glob("*.py")):
        assigned = module_constants(path, ("revision", "down_revision"))
        revision = assigned.get("revision")
        if isinstance(revision, str):
            parents[revision] = as_revisions(assigned.get("down_revision"))
    replaced = {parent for revisions in parents.values() for parent in revisions}
    return frozenset(parents.keys() - replaced)


def module_constants(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """Literal values assigned to ``names`` at the top level of a Python file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return found


def as_revisions(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list):
        return tuple(str(item) for item in value)
    return ()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
