"""``/healthz``: 200 only when a reader could read a page and have a choice stored now.

Checks, in order, stopping at the first that fails; the JSON body names each outcome and the
check that failed:

``database``  the database answers.
``schema``    its schema is at the head of the committed migrations.
``reads``     every table of the schema can be read (``SELECT`` of no row from each, in one
              statement): a revoked ``SELECT`` on ``article`` leaves every article page down.
``writes``    a consent record is inserted the way a choice inserts one, and on PostgreSQL
              rolled back: a revoked ``INSERT``, a read-only database or a missing column
              fails it. On SQLite a rolled-back transaction never reaches the disk, so the
              probe commits one that inserts the record and deletes it again: a full disk
              refuses it (``"full"``) as it refuses a choice.
``proof_keys`` the proof key file can sign (``consent.proof.next_signer.key_file_problem``): once
              keyed records exist, a missing, empty or changed file signs nothing.

A probe takes the database's write lock on SQLite and ``/healthz`` is public, so each worker
probes at most once per ``HEALTH_CHECK_SECONDS`` and answers from its last result in between.
"""

from __future__ import annotations

import ast
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, delete, false, insert, literal, select, text, union_all
from sqlalchemy.exc import SQLAlchemyError

from .consent.proof.next_signer import key_file_problem
from .consent.proof.records import ConsentRecord
from .database import error_summary, one_writer
from .errors import is_missing_schema
from .extensions import db

bp = Blueprint("health", __name__)

OK = "ok"
SELECT_ONE = text("SELECT 1")
APPLIED_REVISIONS = text("SELECT version_num FROM alembic_version")
RECORDS = ConsentRecord.__table__
INSERT_RECORD = insert(RECORDS)
READ_USER_VERSION = "PRAGMA user_version"
SQLITE_FULL = "SQLITE_FULL"

CheckResult = tuple[str, str]  # the outcome, and for a failure the reason to log
Check = Callable[[Connection], CheckResult]
PASSED: CheckResult = (OK, "")


@dataclass(frozen=True)
class Probe:
    """What one run of the checks found: each outcome in order, the check that failed (None
    when all passed) and when it finished (``time.monotonic``)."""

    results: dict[str, str]
    failed: str | None
    finished_at: float


class ProbeMemo:
    """The last probe of one app in this worker, run again once it is ``interval`` seconds
    old. While one thread probes, the others answer from the previous result rather than
    queue behind it (only the very first probe is waited for)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = threading.Lock()
        self.last: Probe | None = None

    def fresh(self, probe: Probe | None) -> bool:
        return probe is not None and time.monotonic() - probe.finished_at < self.interval

    def result(self, run: Callable[[], Probe]) -> Probe:
        last = self.last
        if last is not None and self.fresh(last):
            return last
        if not self.lock.acquire(blocking=last is None):
            assert last is not None
            return last
        try:
            if not self.fresh(self.last):
                self.last = run()
            assert self.last is not None
            return self.last
        finally:
            self.lock.release()


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    probe = current_app.extensions["health"].result(run_probe)
    if probe.failed is not None:
        return jsonify(status="unavailable", failed=probe.failed, **probe.results), 503
    return jsonify(status=OK, **probe.results)


def run_probe() -> Probe:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    results: dict[str, str] = {}
    failed, reason = None, ""
    try:
        connection = db.engine.connect()
    except SQLAlchemyError as error:
        results["database"] = "unreachable"
        failed, reason = "database", error_summary(error)
    else:
        with connection:
            for name, check in checks(connection.dialect.name):
                outcome, reason = check(connection)
                results[name] = outcome
                if outcome != OK:
                    failed = name
                    break
    log_probe(app, failed, results, reason)
    return Probe(results=results, failed=failed, finished_at=time.monotonic())


def log_probe(app: Flask, failed: str | None, results: dict[str, str], reason: str) -> None:
    """A failing probe is logged each time it runs (at most once per interval per worker);
    a passing one only when it follows a failure."""
    memo: ProbeMemo = app.extensions["health"]
    if failed is not None:
        app.logger.warning("health check: %s %s: %s", failed, results[failed], reason)
    elif memo.last is not None and memo.last.failed is not None:
        app.logger.info("health check: ok again (%s had failed)", memo.last.failed)


def checks(dialect: str) -> list[tuple[str, Check]]:
    return [
        ("database", database_answers),
        ("schema", schema_at_head),
        ("reads", tables_readable),
        ("writes", sqlite_write_and_commit if dialect == "sqlite" else record_insertable),
        ("proof_keys", proof_keys_usable),
    ]


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


@cache
def read_every_table() -> Any:
    """One statement that reads no row from each table of the schema: refused, naming the
    table, when any of them cannot be read."""
    return union_all(
        *(
            select(literal(1)).select_from(table).where(false())
            for table in db.metadata.sorted_tables
        )
    )


def tables_readable(connection: Connection) -> CheckResult:
    try:
        connection.execute(read_every_table()).all()
    except SQLAlchemyError as error:
        return "refused", error_summary(error)
    finally:
        connection.rollback()
    return PASSED


def probe_record() -> dict[str, object]:
    """A consent record no choice could make: a negative id (no sequence value is taken,
    and no two probes wait on each other's key) and a hash no HMAC has. It is rolled back."""
    token = secrets.token_hex(8)
    return {
        "id": -secrets.randbelow(2**31 - 1) - 1,
        "consent_id": f"healthz-{token}",
        "created_at": datetime.now(UTC).replace(tzinfo=None),
        "action": "healthz",
        "categories": [],
        "revision": 0,
        "notice_hash": "",
        "gpc": False,
        "prev_hash": "",
        "key_id": None,
        "hash": f"healthz-{token}",
        "language": None,
    }


def record_insertable(connection: Connection) -> CheckResult:
    """Insert a consent record as a choice does, and roll it back."""
    connection.rollback()
    try:
        connection.execute(INSERT_RECORD, probe_record())
    except SQLAlchemyError as error:
        return "refused", error_summary(error)
    finally:
        connection.rollback()
    return PASSED


def sqlite_write_and_commit(connection: Connection) -> CheckResult:
    """On SQLite, in the writer queue's turn and under ``BEGIN IMMEDIATE`` as a choice's
    batch: insert a consent record, delete it, write the header's ``user_version`` back as it
    is, and commit. In WAL mode a rolled-back transaction never reaches the disk, so only a
    commit finds a full one; this one writes the pages a choice writes (the table's and its
    indexes') and one more, and leaves no row. The site does not use ``user_version``."""
    connection.rollback()
    record = probe_record()
    try:
        with one_writer(connection.engine):
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                connection.execute(INSERT_RECORD, record)
                connection.execute(delete(RECORDS).where(RECORDS.c.id == record["id"]))
                version = int(connection.exec_driver_sql(READ_USER_VERSION).scalar_one())
                connection.exec_driver_sql(f"{READ_USER_VERSION} = {version}")
                connection.commit()
            finally:
                connection.rollback()
    except SQLAlchemyError as error:
        outcome = "full" if sqlite_error_name(error) == SQLITE_FULL else "refused"
        return outcome, error_summary(error)
    return PASSED


def sqlite_error_name(error: SQLAlchemyError) -> str | None:
    return getattr(getattr(error, "orig", None), "sqlite_errorname", None)


def proof_keys_usable(connection: Connection) -> CheckResult:
    """Ask the proof keys whether their file can sign now (a missing, empty or changed file
    once keyed records exist is an outage: nothing could be signed)."""
    problem = key_file_problem(current_app._get_current_object())  # type: ignore[attr-defined]
    return ("unusable", problem) if problem else PASSED


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
    app.extensions["health"] = ProbeMemo(float(app.config["HEALTH_CHECK_SECONDS"]))
    app.register_blueprint(bp)
