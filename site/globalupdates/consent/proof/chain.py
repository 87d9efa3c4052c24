"""The keyed chain over consent records: serialised appends and pruning.

Each record stores the ``hash`` of the record before it (``prev_hash``) and its own
``hash``: an HMAC-SHA256, under the proof key named by its ``key_id``, over its fields, that
link and the key id (see ``proof_keys``). The key is not in the database, so whoever can
write the database can neither re-sign a record they altered nor sign one they made up.
Records made before proof keys have no ``key_id`` and a plain SHA-256 ``hash``; they may
only open the chain, before its first keyed record. A record's ``language`` (of the notice it
was made under) is signed when it has one: records made before languages were recorded have
none, and their signed form is what it was when they were made. What is signed is in
``seals.py``; which key may sign the next record, checked against the chain's head inside the
lock, in ``next_signer.checked_signer``. A record's ``regime`` (opt-in or opt-out, never
the place) is signed likewise when it has one: records made before regions have none.

Appends take a database-wide lock first (SQLite ``BEGIN IMMEDIATE`` behind the writers'
queue, a PostgreSQL advisory transaction lock), so several gunicorn workers never link two
records to the same head. Records that arrive together are appended together, in one
transaction (``ChainWriter``: group commit). Verification lives in ``verification.py``,
checkpoints of the head in ``checkpoints.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ...database import (
    WriteBatchFailed,
    error_summary,
    lock_for_writing,
    locked_transaction,
    one_writer,
)
from ...extensions import db
from ...metrics.choices import count_committed
from .next_signer import chain_head, checked_signer, remember_signed
from .proof_keys import ProofKeyError
from .records import AuditReader, ChainAnchor, ConsentRecord, as_utc
from .seals import seal_anchor, seal_record

RECORDS = ConsentRecord.__table__
ANCHORS = ChainAnchor.__table__
AUDIT_READERS = AuditReader.__table__
INSERT_RECORD = insert(RECORDS)
INSERT_ANCHOR = insert(ANCHORS)
POSTGRES_CHAIN_LOCK = 0x6775_636F_6E73  # any constant 64-bit key shared by every worker
WRITER = "consent_chain_writer"


def lock_chain(connection: Connection | Session) -> None:
    """Hold the chain's write lock for the rest of this transaction."""
    if isinstance(connection, Session):
        connection = connection.connection()
    lock_for_writing(connection, POSTGRES_CHAIN_LOCK)


@dataclass(frozen=True)
class NewestRecord:
    """What a condition on an append may know of a reader's newest record."""

    action: str
    categories: frozenset[str]


Condition = Callable[[NewestRecord | None], bool]


@dataclass(eq=False)
class PendingRecord:
    """One record waiting for its batch: its fields (all but the link, the key and the hash),
    for a conditional append when to leave it out, and whether the cookie audit made it."""

    fields: dict[str, Any]
    skip_when: Condition | None = None
    audit: bool = False
    done: bool = False
    hash: str | None = None
    error: BaseException | None = None


class ChainWriter:
    """Group commit: the records that arrive while an append is under way go in together.

    Each caller queues its record, then waits for this process's leader lock. Whoever holds
    it takes the chain's database lock, then every record queued by then (its own among
    them), reads the head once, links and signs them in order, inserts them in one statement
    and commits once; then it hands each caller its hash, or the batch's error. A caller
    whose record a previous leader already committed returns at once. So a burst of choices
    costs one lock, one read, one insert and one commit (one fsync on SQLite), and no caller
    answers before its own record is committed. A batch is all or nothing: if anything fails,
    none of its records is stored, and each of its callers gets ``WriteBatchFailed``.
    """

    def __init__(self) -> None:
        self.queued: list[PendingRecord] = []
        self.queue_lock = threading.Lock()
        self.leader_lock = threading.Lock()

    def append(self, engine: Engine, record: PendingRecord) -> str | None:
        with self.queue_lock:
            self.queued.append(record)
        with self.leader_lock:
            if not record.done:
                self.commit_queued(engine)
        if record.error is not None:
            raise WriteBatchFailed(error_summary(record.error)) from record.error
        return record.hash

    def take_queued(self) -> list[PendingRecord]:
        with self.queue_lock:
            batch, self.queued = self.queued, []
        return batch

    def commit_queued(self, engine: Engine) -> None:
        batch: list[PendingRecord] = []
        started = time.perf_counter()
        try:
            with locked_transaction(engine, POSTGRES_CHAIN_LOCK) as connection:
                batch = self.take_queued()
                hashes = write_batch(connection, batch)
                connection.commit()
                for record, hash_ in zip(batch, hashes, strict=True):
                    record.hash, record.done = hash_, True
            committed = [record for record in batch if record.hash is not None]
            count_committed(
                [record.fields for record in committed if not record.audit],
                time.perf_counter() - started,
                audit_records=sum(record.audit for record in committed),
            )
        except BaseException as error:
            failed = [record for record in batch or self.take_queued() if not record.done]
            for record in failed:
                record.error, record.done = error, True
            if not isinstance(error, Exception):
                raise
            log_failed_batch(error, len(failed))


def log_failed_batch(error: Exception, count: int) -> None:
    """A database that cannot be reached or written, or proof keys that cannot sign, are an
    outage, said in one line; any other failure is a fault in the site, logged with its trace."""
    if isinstance(error, ProofKeyError):
        current_app.logger.error(
            "%d consent record(s) not stored, answered 503: proof keys cannot sign: %s",
            count,
            error,
        )
    elif isinstance(error, DBAPIError):
        current_app.logger.warning(
            "%d consent record(s) not stored, answered 503: %s", count, error_summary(error)
        )
    else:
        current_app.logger.error(
            "%d consent record(s) not stored, answered 503", count, exc_info=error
        )


def write_batch(connection: Connection, batch: list[PendingRecord]) -> list[str | None]:
    """Link and sign the batch's records in order after the chain's head and insert them in
    one statement; return each record's hash (None for a conditional record left out).

    A conditional record is judged by its reader's newest record: the one stored, or an
    earlier one of this very batch.
    """
    newest = newest_records(
        connection, {record.fields["consent_id"] for record in batch if record.skip_when}
    )
    head = chain_head(connection)
    key = checked_signer(current_app, head)
    prev_hash, next_id = head.hash, head.next_id
    rows: list[dict[str, Any]] = []
    hashes: list[str | None] = []
    for record in batch:
        consent_id = record.fields["consent_id"]
        if record.skip_when is not None and record.skip_when(newest.get(consent_id)):
            hashes.append(None)
            continue
        row = {**record.fields, "prev_hash": prev_hash, "key_id": key.key_id}
        row["hash"] = prev_hash = seal_record(row, key)
        if next_id is not None:
            row["id"], next_id = next_id, next_id + 1
        rows.append(row)
        hashes.append(row["hash"])
        newest[consent_id] = NewestRecord(row["action"], frozenset(row["categories"]))
    if rows:
        connection.execute(INSERT_RECORD, rows)
        remember_signed(current_app, prev_hash, key)
    mark_audit_readers(connection, batch, hashes)
    return hashes


def mark_audit_readers(
    connection: Connection, batch: list[PendingRecord], hashes: list[str | None]
) -> None:
    """Mark, in the batch's own transaction, the consent ids of the audit's records, so no
    figure ever counts one of them, not even between two statements."""
    audit_ids = {
        record.fields["consent_id"]
        for record, hash_ in zip(batch, hashes, strict=True)
        if record.audit and hash_ is not None
    }
    if not audit_ids:
        return
    marked = set(
        connection.scalars(
            select(AUDIT_READERS.c.consent_id).where(AUDIT_READERS.c.consent_id.in_(audit_ids))
        )
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    new = [{"consent_id": consent_id, "marked_at": now} for consent_id in audit_ids - marked]
    if new:
        connection.execute(insert(AUDIT_READERS), new)


def newest_records(connection: Connection, consent_ids: set[str]) -> dict[str, NewestRecord]:
    """The newest stored record of each of these readers, in one statement."""
    if not consent_ids:
        return {}
    newest_ids = (
        select(func.max(RECORDS.c.id))
        .where(RECORDS.c.consent_id.in_(consent_ids))
        .group_by(RECORDS.c.consent_id)
    )
    rows = connection.execute(
        select(RECORDS.c.consent_id, RECORDS.c.action, RECORDS.c.categories).where(
            RECORDS.c.id.in_(newest_ids)
        )
    )
    return {row.consent_id: NewestRecord(row.action, frozenset(row.categories)) for row in rows}


def chain_writer() -> ChainWriter:
    """This process's writer for the current app's chain."""
    writer = current_app.extensions.get(WRITER)
    if writer is None:
        writer = current_app.extensions.setdefault(WRITER, ChainWriter())
    return writer


def append_to_chain(
    *,
    consent_id: str,
    created_at: datetime,
    action: str,
    categories: list[str],
    revision: int,
    notice_hash: str,
    gpc: bool,
    language: str | None = None,
    regime: str | None = None,
    services: list[str] | None = None,
    skip_when: Condition | None = None,
    audit: bool = False,
) -> str | None:
    """Append one record and return its hash once it is committed, in a batch with whatever
    other records arrived meanwhile (``ChainWriter``); ``WriteBatchFailed`` when it could not
    be stored. ``notice_hash`` is the digest of the notice in ``language``.

    With ``skip_when``, the record is left out (and None returned) when that holds for its
    reader's newest record, judged inside the chain's lock: requests that race cannot both
    append. The key is chosen by whoever commits the batch (``checked_signer``). An ``audit``
    record is the cookie audit's: its consent id is marked in the same transaction.
    """
    fields = {
        "consent_id": consent_id,
        "created_at": as_utc(created_at).replace(tzinfo=None),
        "action": action,
        "categories": categories,
        "revision": revision,
        "notice_hash": notice_hash,
        "gpc": gpc,
        "language": language,
        "regime": regime,
        "services": services,
    }
    return chain_writer().append(db.engine, PendingRecord(fields, skip_when, audit=audit))


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    anchor_hash: str | None


def prune_before(before: datetime) -> PruneResult:
    """Delete the oldest records made before ``before`` and leave a signed anchor for the rest.

    Only a run of records from the start of the chain is deleted (up to the first record
    made on or after ``before``), so what is kept is still one unbroken chain. Only ids and
    hashes are read, so a record with a malformed field is pruned like any other. The audit's
    marks go with the last record of their consent id.
    """
    cutoff = as_utc(before).replace(tzinfo=None)
    with one_writer(db.engine), db.engine.connect() as connection:
        lock_chain(connection)
        key = checked_signer(current_app, chain_head(connection))
        tail = connection.execute(prunable_tail(connection, cutoff)).first()
        if tail is None:
            connection.rollback()
            return PruneResult(0, None)
        count = connection.scalar(
            select(func.count()).select_from(RECORDS).where(RECORDS.c.id <= tail.id)
        )
        anchor: dict[str, Any] = {
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "pruned_before": cutoff,
            "last_pruned_id": tail.id,
            "tail_hash": tail.hash,
            "pruned_count": count or 0,
            "key_id": key.key_id,
        }
        anchor["mac"] = seal_anchor(anchor, key)
        connection.execute(INSERT_ANCHOR, anchor)
        connection.execute(delete(RECORDS).where(RECORDS.c.id <= tail.id))
        connection.execute(
            delete(AUDIT_READERS).where(
                AUDIT_READERS.c.consent_id.not_in(select(RECORDS.c.consent_id))
            )
        )
        connection.commit()
    return PruneResult(anchor["pruned_count"], tail.hash)


def prunable_tail(connection: Connection, cutoff: datetime) -> Any:
    """A query for the last record of the run, from the start of the chain, made before
    ``cutoff``."""
    first_kept = connection.scalar(
        select(func.min(RECORDS.c.id)).where(RECORDS.c.created_at >= cutoff)
    )
    query = select(RECORDS.c.id, RECORDS.c.hash).order_by(RECORDS.c.id.desc()).limit(1)
    if first_kept is not None:
        query = query.where(RECORDS.c.id < first_kept)
    return query
