"""The hash chain over consent records: serialised appends, verification and pruning.

Each record stores the hash of the record before it and a hash of its own fields plus that
link, so altering or deleting a stored record breaks the chain at a place that can be named.
Appends take a database-wide lock first (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory
transaction lock), so several gunicorn workers never link two records to the same head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text
from sqlalchemy.orm import Session

from ..database import one_writer
from ..extensions import db
from .records import EXPORT_FIELDS, ChainAnchor, ConsentRecord, as_utc, utc_text

GENESIS_HASH = "0" * 64
RECORDS = ConsentRecord.__table__
ANCHORS = ChainAnchor.__table__
INSERT_RECORD = insert(RECORDS)
NEWEST_RECORD_HASH = select(RECORDS.c.hash).order_by(RECORDS.c.id.desc()).limit(1)
NEWEST_ANCHOR_HASH = select(ANCHORS.c.tail_hash).order_by(ANCHORS.c.id.desc()).limit(1)
CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
POSTGRES_CHAIN_LOCK = 0x6775_636F_6E73  # any constant 64-bit key shared by every worker


HASHED_FIELDS = tuple(name for name in EXPORT_FIELDS if name not in ("id", "hash"))


def record_hash(record: ConsentRecord) -> str:
    """SHA-256 over the record's own fields and its link, in one canonical JSON form."""
    return fields_hash({name: getattr(record, name) for name in HASHED_FIELDS})


def fields_hash(fields: dict[str, Any]) -> str:
    canonical = {
        **fields,
        "created_at": utc_text(fields["created_at"]),
        "categories": list(fields["categories"]),
        "gpc": bool(fields["gpc"]),
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def lock_chain(connection: Connection | Session) -> None:
    """Hold the database's write lock for the rest of this transaction."""
    if isinstance(connection, Session):
        connection = connection.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.execute(CHAIN_LOCK, {"key": POSTGRES_CHAIN_LOCK})
    else:
        raise RuntimeError(f"no chain lock for the {dialect} database")


def chain_head(connection: Connection | Session) -> str:
    """The hash the next record links to: the newest record's, or the newest anchor's."""
    last = connection.scalar(NEWEST_RECORD_HASH)
    if last is not None:
        return last
    return latest_anchor_hash(connection) or GENESIS_HASH


def latest_anchor_hash(connection: Connection | Session) -> str | None:
    return connection.scalar(NEWEST_ANCHOR_HASH)


def append_to_chain(
    *,
    consent_id: str,
    created_at: datetime,
    action: str,
    categories: list[str],
    revision: int,
    notice_hash: str,
    gpc: bool,
) -> str:
    """Append one record in its own transaction, independent of the request's session, and
    return its hash.

    Written with SQLAlchemy Core, not the ORM: one append is a lock, one read of the head
    and one insert, and the ORM's unit of work cost more than all three together.
    """
    fields: dict[str, Any] = {
        "consent_id": consent_id,
        "created_at": as_utc(created_at).replace(tzinfo=None),
        "action": action,
        "categories": categories,
        "revision": revision,
        "notice_hash": notice_hash,
        "gpc": gpc,
    }
    with one_writer(db.engine), db.engine.connect() as connection:
        lock_chain(connection)
        fields["prev_hash"] = chain_head(connection)
        fields["hash"] = fields_hash(fields)
        connection.execute(INSERT_RECORD, fields)
        connection.commit()
    return fields["hash"]


@dataclass(frozen=True)
class ChainReport:
    checked: int
    problem: str | None = None
    record_id: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def iter_records(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    consent_id: str | None = None,
    batch_size: int = 500,
) -> Generator[ConsentRecord, None, None]:
    """Records oldest first, streamed from the database in batches of ``batch_size``."""
    query = db.select(ConsentRecord).order_by(ConsentRecord.id)
    if since is not None:
        query = query.where(ConsentRecord.created_at >= as_utc(since).replace(tzinfo=None))
    if until is not None:
        query = query.where(ConsentRecord.created_at < as_utc(until).replace(tzinfo=None))
    if consent_id is not None:
        query = query.where(ConsentRecord.consent_id == consent_id)
    with Session(db.engine) as session:
        result = session.scalars(query.execution_options(yield_per=batch_size))
        try:
            for record in result:
                yield record
                session.expunge(record)
        finally:
            result.close()


def verify_chain(batch_size: int = 500) -> ChainReport:
    """Walk the whole chain once, in id order, and stop at the first broken link."""
    with Session(db.engine) as session:
        expected = latest_anchor_hash(session) or GENESIS_HASH
    previous: ConsentRecord | None = None
    checked = 0
    with closing(iter_records(batch_size=batch_size)) as chain:
        for record in chain:
            if record_hash(record) != record.hash:
                return ChainReport(checked, f"record {record.id} was altered", record.id)
            if record.prev_hash != expected:
                return ChainReport(checked, broken_link_message(previous, record), record.id)
            expected = record.hash
            previous = record
            checked += 1
    return ChainReport(checked)


def broken_link_message(previous: ConsentRecord | None, record: ConsentRecord) -> str:
    if previous is None:
        return f"the records before record {record.id} were removed (no anchor vouches for them)"
    if record.id > previous.id + 1:
        missing = (
            f"{previous.id + 1}"
            if record.id == previous.id + 2
            else (f"{previous.id + 1} to {record.id - 1}")
        )
        return (
            f"record {missing} was removed (record {record.id} no longer links to its predecessor)"
        )
    return (
        f"record {previous.id} was altered and re-hashed, or a record between "
        f"{previous.id} and {record.id} was removed"
    )


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    anchor_hash: str | None


def prune_before(before: datetime) -> PruneResult:
    """Delete the oldest records made before ``before`` and leave an anchor for the rest.

    Only a run of records from the start of the chain is deleted (up to the first record
    made on or after ``before``), so what is kept is still one unbroken chain.
    """
    cutoff = as_utc(before).replace(tzinfo=None)
    with Session(db.engine) as session:
        lock_chain(session)
        first_kept = session.scalar(
            db.select(db.func.min(ConsentRecord.id)).where(ConsentRecord.created_at >= cutoff)
        )
        doomed = db.select(ConsentRecord.id)
        if first_kept is not None:
            doomed = doomed.where(ConsentRecord.id < first_kept)
        tail = session.scalar(
            db.select(ConsentRecord)
            .where(ConsentRecord.id.in_(doomed.scalar_subquery()))
            .order_by(ConsentRecord.id.desc())
            .limit(1)
        )
        if tail is None:
            session.rollback()
            return PruneResult(0, None)
        count = session.scalar(
            db.select(db.func.count()).select_from(ConsentRecord).where(ConsentRecord.id <= tail.id)
        )
        session.add(
            ChainAnchor(
                created_at=datetime.now(UTC).replace(tzinfo=None),
                pruned_before=cutoff,
                last_pruned_id=tail.id,
                tail_hash=tail.hash,
                pruned_count=count or 0,
            )
        )
        session.execute(db.delete(ConsentRecord).where(ConsentRecord.id <= tail.id))
        tail_hash = tail.hash
        session.commit()
        return PruneResult(count or 0, tail_hash)
