"""Which proof key may sign the next record, checked against the chain's head.

The head is the newest record, else the newest anchor, else the genesis value, read as
stored. Once keyed records exist, the key that signed the head must still be known with the
very secret that made its hash, and the signing key may not be older than it: a key file
removed, emptied or changed under running workers is an outage (``ProofKeyError``), never a
new key under an old id. ``key_file_problem`` gives the same verdict to ``/healthz``. The keys
themselves are in ``proof_keys``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Select, select, union
from sqlalchemy.exc import SQLAlchemyError

from ...extensions import db
from .proof_keys import ProofKey, ProofKeyError, create_key_file, current_keyring, key_file
from .seals import GENESIS_HASH, seal_anchor, seal_record
from .stored_rows import (
    ANCHOR_FIELDS,
    ANCHORS,
    RECORD_FIELDS,
    RECORDS,
    parse_row,
    raw_anchors,
    raw_records,
    readable,
    tolerant_text,
)

LAST_SIGNED = "consent_chain_last_signed"


@dataclass(frozen=True)
class ChainHead:
    """What the next record links to: the newest record, else the newest anchor, else the
    genesis value. ``what`` names it, ``key_id`` is the key that signed it, and ``sealed_by``
    tells whether a key reproduces its stored hash (or mac)."""

    hash: str
    next_id: int | None
    what: str = "genesis"
    key_id: str | None = None
    sealed_by: Callable[[ProofKey], bool] | None = None


def chain_head(connection: Connection) -> ChainHead:
    """The chain's head, read as stored, and the id the next record must take, when it must.

    After a prune of every record, the next record takes the id after the last one pruned.
    SQLite gives a table without AUTOINCREMENT the id after the highest one present, which
    would start again at 1 and let one id name two records over time (and a kept checkpoint
    the wrong one). PostgreSQL's sequence never goes back, and an id set by hand there would
    later collide with it.
    """
    dialect = connection.dialect.name
    with tolerant_text(connection):
        newest = connection.execute(newest_record(dialect)).mappings().first()
        if newest is not None:
            return head_record(newest)
        anchor = connection.execute(newest_anchor(dialect)).mappings().first()
    if anchor is None:
        return ChainHead(GENESIS_HASH, None)
    head = head_anchor(anchor)
    if dialect == "sqlite":
        return replace(head, next_id=anchor["last_pruned_id"] + 1)
    return head


@cache
def newest_record(dialect: str) -> Select:
    return raw_records(dialect).order_by(None).order_by(RECORDS.c.id.desc()).limit(1)


@cache
def newest_anchor(dialect: str) -> Select:
    return raw_anchors(dialect).order_by(None).order_by(ANCHORS.c.id.desc()).limit(1)


def head_record(row: Any) -> ChainHead:
    """The newest record as the head; its fields are parsed only if its hash must be checked."""
    what = f"record {row['id']}"

    def sealed_by(key: ProofKey) -> bool:
        fields = readable_head(row, RECORD_FIELDS, what)
        return hmac.compare_digest(seal_record(fields, key), fields["hash"])

    return ChainHead(
        readable(row["hash"], f"{what}: hash", ProofKeyError),
        None,
        what,
        readable_key_id(row, what),
        sealed_by,
    )


def head_anchor(row: Any) -> ChainHead:
    what = f"anchor {row['id']}"

    def sealed_by(key: ProofKey) -> bool:
        fields = readable_head(row, ANCHOR_FIELDS, what)
        mac = fields["mac"]
        return isinstance(mac, str) and hmac.compare_digest(seal_anchor(fields, key), mac)

    return ChainHead(
        readable(row["tail_hash"], f"{what}: tail_hash", ProofKeyError),
        None,
        what,
        readable_key_id(row, what),
        sealed_by,
    )


def readable_key_id(row: Any, what: str) -> str | None:
    return (
        None if row["key_id"] is None else readable(row["key_id"], f"{what}: key_id", ProofKeyError)
    )


def readable_head(row: Any, parsers: Mapping[str, Callable[[Any], Any]], what: str) -> dict:
    fields, problems = parse_row(row, parsers)
    if problems:
        raise ProofKeyError(
            f"the chain's head, {what}, cannot be read ({'; '.join(problems)}), so its proof "
            "key cannot be checked: `flask consent verify` names what is wrong"
        )
    return fields


def checked_signer(app: Flask, head: ChainHead) -> ProofKey:
    """The key that signs after ``head``, or ``ProofKeyError`` saying why none may.

    The keys are this process's, read again when the key file changed. When the head is
    keyed, its key must still be known with the very secret that made its hash, and the
    signing key may not be older than it: a key file that was removed, emptied or changed
    after keyed records were made is an outage, never a new key under an old id, and a
    retired key never signs again. Only a chain with no keyed head (empty, or made before
    proof keys) may have its first key file made here.
    """
    keyring = current_keyring(app)
    path = key_file(app)
    if head.key_id is None or head.sealed_by is None:
        if keyring.signer is None:
            create_key_file(path)
            keyring = current_keyring(app)
        assert keyring.signer is not None, "a key file just made holds a key"
        return keyring.signer
    head_key = keyring.get(head.key_id)
    if keyring.signer is None or head_key is None:
        where = f"{path} is missing" if not path.exists() else f"{path} has no key {head.key_id}"
        raise ProofKeyError(
            f"{where}, yet {head.what} was signed by key {head.key_id}: restore the key file "
            "that signed it (a new key under its id would make the chain unverifiable)"
        )
    if not signed_here(app, head, head_key) and not head.sealed_by(head_key):
        raise ProofKeyError(
            f"key {head.key_id} in {path} is not the key that signed {head.what} (its hash "
            "does not match): the key file was changed, or that record altered; restore the "
            "file that signed it, and run `flask consent verify`"
        )
    if keyring.rank(keyring.signer.key_id) < keyring.rank(head.key_id):
        raise ProofKeyError(
            f"{head.what} was signed by key {head.key_id}, newer than the signing key "
            f"{keyring.signer.key_id} (in {path} or CONSENT_PROOF_KEY): a retired key "
            "never signs again"
        )
    return keyring.signer


def signed_here(app: Flask, head: ChainHead, key: ProofKey) -> bool:
    """Whether this process itself signed ``head`` with ``key`` (secret and all): then its
    hash needs no second HMAC. The usual case, and one HMAC fewer per batch."""
    return app.extensions.get(LAST_SIGNED) == (head.hash, key)


def remember_signed(app: Flask, hash_: str, key: ProofKey) -> None:
    app.extensions[LAST_SIGNED] = (hash_, key)


def signing_key() -> ProofKey:
    """The key the current app's next record would be signed with, checked as an append
    checks it."""
    with db.engine.connect() as connection:
        head = chain_head(connection)
    return checked_signer(current_app, head)


def key_file_problem(app: Flask) -> str | None:
    """None while the proof keys can sign the next choice; else why not, naming the file.

    For ``/healthz``: the key file is read again only when it changed, and checked against
    the chain's newest record or anchor (one indexed read) as an append checks it
    (``checked_signer``). A database that cannot be read is left to its own checks.
    """
    try:
        with db.engine.connect() as connection:
            head = chain_head(connection)
        if head.key_id is None and current_keyring(app).signer is None:
            return None  # the first record will make the key file
        checked_signer(app, head)
    except ProofKeyError as error:
        return str(error)
    except SQLAlchemyError:
        return None
    return None


def key_ids_in_use(connection: Connection) -> set[str]:
    """Every key id the chain's records and anchors name (one pass over each table)."""
    query = union(
        select(RECORDS.c.key_id).where(RECORDS.c.key_id.is_not(None)),
        select(ANCHORS.c.key_id).where(ANCHORS.c.key_id.is_not(None)),
    )
    return {key_id for key_id in connection.scalars(query) if isinstance(key_id, str)}
