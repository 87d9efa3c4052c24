"""Verifying the consent chain from the values as stored, whatever someone made of them.

Each field is read and parsed by ``stored``, so a field made unreadable by someone with
database access (a ``created_at`` of 'yesterday' or of year 10000, categories that are not
JSON or nested thousands deep, text that is not UTF-8) is reported with its record and
name instead of ending the walk in a traceback.

Every record is checked, to the end: after a bad record the walk goes on from that record's
stored hash, so one altered record is reported once and does not condemn all that follow.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Connection, select

from ...extensions import db
from .checkpoints import KeptCheckpoint
from .proof_keys import Keyring, ProofKey, load_keyring
from .records import utc_text
from .seals import GENESIS_HASH, seal_anchor, seal_record
from .stored_rows import (
    ANCHOR_FIELDS,
    RECORD_FIELDS,
    RECORDS,
    parse_row,
    raw,
    raw_anchors,
    raw_records,
    tolerant_text,
)

KEPT_PROBLEMS = 100  # a report keeps this many messages; every one is passed to on_problem


def same_hash(computed: str, stored: Any) -> bool:
    return isinstance(stored, str) and hmac.compare_digest(computed, stored)


@dataclass(frozen=True)
class Anchor:
    """An anchor as verification sees it; ``signed`` only when its mac checked out."""

    id: int
    tail_hash: Any
    last_pruned_id: int | None
    pruned_count: int | None
    pruned_before: datetime | None
    key_id: str | None
    signed: bool

    def describe(self) -> str:
        pruned = (
            f"it pruned {self.pruned_count} record(s) made before "
            f"{utc_text(self.pruned_before)}, up to record {self.last_pruned_id}"
            if self.pruned_before is not None
            else "its fields are malformed"
        )
        unsigned = "" if self.key_id else "; it is not signed by a proof key"
        return f"anchor {self.id} ({pruned}{unsigned})"


@dataclass
class ChainReport:
    """What one walk found: where the chain starts and ends, and what is wrong with it."""

    start: Anchor | None = None
    checked: int = 0
    head_hash: str = GENESIS_HASH
    head_id: int | None = None
    unkeyed: int = 0
    first_keyed_id: int | None = None
    checkpoints: int = 0
    key_ids: tuple[str, ...] = ()
    problem_count: int = 0
    problems: list[str] = field(default_factory=list)
    # Records checked per notice language; None counts those made before it was recorded.
    languages: dict[str | None, int] = field(default_factory=dict)
    # Records checked per consent regime; None counts those made before regions.
    regimes: dict[str | None, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return self.problem_count == 0

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None

    def describe_start(self) -> str:
        return "genesis" if self.start is None else self.start.describe()

    def describe_languages(self) -> str:
        """ "en 3, de 2, not recorded 1": the records checked per notice language."""
        return described_counts(self.languages)

    def describe_regimes(self) -> str:
        """ "opt-in 3, opt-out 1, not recorded 2": the records checked per consent regime."""
        return described_counts(self.regimes)


def described_counts(counts: dict[str | None, int]) -> str:
    """Most first, then by name, and those with nothing recorded last."""
    named = sorted(
        ((name, count) for name, count in counts.items() if name),
        key=lambda item: (-item[1], item[0]),
    )
    parts = [f"{name} {count}" for name, count in named]
    if counts.get(None):
        parts.append(f"not recorded {counts[None]}")
    return ", ".join(parts) or "none"


ProblemSink = Callable[[str], None]


def seal_name(key: ProofKey | None) -> str:
    if key is None:
        return "its hash is not the SHA-256 of its fields (it has no proof key)"
    return f"its hash is not the HMAC of its fields under key {key.key_id}"


@dataclass(frozen=True)
class Signer:
    """The newest key seen signing so far: its place among the keys, its id, and the first
    record (or anchor) it signed."""

    rank: int
    key_id: str
    first: str


class Walk:
    """Checks records one at a time, in id order, keeping only what the next one needs."""

    def __init__(self, keyring: Keyring, report: ChainReport, note: ProblemSink) -> None:
        self.keyring = keyring
        self.report = report
        self.note = note
        start = report.start
        self.expected: Any = GENESIS_HASH if start is None else start.tail_hash
        self.report.head_hash = self.expected if isinstance(self.expected, str) else ""
        self.previous_id: int | None = None
        self.last_unkeyed_id: int | None = None
        self.last_keyed_id: int | None = None
        self.newest_signer: Signer | None = None
        if start is not None and start.key_id is not None and start.signed:
            self.newest_signer = Signer(
                keyring.rank(start.key_id), start.key_id, f"anchor {start.id}"
            )

    def step(self, row: Mapping[Any, Any]) -> None:
        record_id = row["id"]
        fields, malformed = parse_row(row, RECORD_FIELDS)
        for message in malformed:
            self.note(f"record {record_id}: {message}")
        if "key_id" in fields:
            checkable, key = self.key_for(record_id, fields["key_id"])
            if checkable and not malformed and not same_hash(seal_record(fields, key), row["hash"]):
                self.note(f"record {record_id} was altered: {seal_name(key)}")
        self.check_link(record_id, row["prev_hash"])
        language = fields.get("language")
        self.report.languages[language] = self.report.languages.get(language, 0) + 1
        regime = fields.get("regime")
        self.report.regimes[regime] = self.report.regimes.get(regime, 0) + 1
        self.expected = row["hash"]
        self.previous_id = record_id
        self.report.checked += 1
        self.report.head_id = record_id
        self.report.head_hash = row["hash"] if isinstance(row["hash"], str) else ""

    def key_for(self, record_id: int, key_id: str | None) -> tuple[bool, ProofKey | None]:
        """Whether the record can be checked, and with which key: None for a record made
        before proof keys (checked by SHA-256); not at all under an unknown key, or when an
        unkeyed record follows a keyed one (reported here)."""
        if key_id is None:
            return self.unkeyed(record_id), None
        if self.report.first_keyed_id is None:
            self.report.first_keyed_id = record_id
            self.refuse_unsigned_start(record_id)
        self.last_keyed_id = record_id
        key = self.keyring.get(key_id)
        if key is None:
            self.note(
                f"record {record_id}: key_id {key_id!r} is not a known proof key (neither in "
                "the key file nor CONSENT_PROOF_KEY)"
            )
            return False, None
        self.check_not_retired(record_id, key_id)
        return True, key

    def check_not_retired(self, record_id: int, key_id: str) -> None:
        """Once a newer key has signed, an older one is retired: a record it signed after
        that point was signed by whoever kept the old key, not by the site."""
        rank = self.keyring.rank(key_id)
        newest = self.newest_signer
        if newest is not None and rank < newest.rank:
            self.note(
                f"record {record_id}: signed by key {key_id}, retired since {newest.first} "
                f"was signed by the newer key {newest.key_id}"
            )
        elif newest is None or rank > newest.rank:
            self.newest_signer = Signer(rank, key_id, f"record {record_id}")

    def unkeyed(self, record_id: int) -> bool:
        """Records made before proof keys may only lead the chain, before its first keyed
        record (``finish`` asks for one after them)."""
        if self.last_keyed_id is not None:
            self.note(
                f"record {record_id}: key_id is missing, yet record {self.last_keyed_id} "
                "before it is keyed; only records made before proof keys may lack one"
            )
            return False
        self.report.unkeyed += 1
        self.last_unkeyed_id = record_id
        return True

    def finish(self) -> None:
        """A site that has proof keys has signed with them: its newest records are keyed.
        Unkeyed records with no keyed record after them, while keys exist, are the chain
        rewritten without the key, not records from before proof keys. With a keyed record
        after them, its signed link vouches for the whole run, wherever the chain starts
        (genesis, or an anchor a prune left part-way through the run)."""
        if self.report.unkeyed and self.report.first_keyed_id is None and self.keyring.keys:
            self.note(
                f"the chain ends with record {self.last_unkeyed_id}, which carries no proof "
                f"key, yet the site has proof keys ({', '.join(self.keyring.keys)}) and no "
                "record signed by one follows: unkeyed records may only lead the chain"
            )

    def refuse_unsigned_start(self, record_id: int) -> None:
        """An anchor without a key may open a chain made before proof keys, never a keyed
        one: that is what deleting the oldest records and writing an anchor would leave."""
        start = self.report.start
        if start is not None and start.key_id is None and self.previous_id is None:
            self.note(
                f"anchor {start.id}: not signed by a proof key, so it cannot vouch for the "
                f"records before keyed record {record_id}"
            )

    def check_link(self, record_id: int, prev_hash: Any) -> None:
        if prev_hash == self.expected:
            return
        previous = self.previous_id
        if previous is None:
            self.note(
                f"the records before record {record_id} were removed "
                f"(record {record_id} does not link to {self.report.describe_start()})"
            )
        elif record_id > previous + 1:
            missing = (
                f"{previous + 1}"
                if record_id == previous + 2
                else f"{previous + 1} to {record_id - 1}"
            )
            self.note(
                f"record {missing} was removed (record {record_id} no longer links to "
                f"record {previous})"
            )
        else:
            self.note(
                f"record {record_id} does not link to record {previous}: one of them was "
                "altered, or re-linked"
            )


def check_anchors(connection: Connection, keyring: Keyring, note: ProblemSink) -> list[Anchor]:
    """Every anchor, oldest first, each with whether its mac is good."""
    anchors = []
    for row in connection.execute(raw_anchors(connection.dialect.name)).mappings():
        fields, malformed = parse_row(row, ANCHOR_FIELDS)
        for message in malformed:
            note(f"anchor {row['id']}: {message}")
        anchors.append(
            Anchor(
                id=row["id"],
                tail_hash=row["tail_hash"],
                last_pruned_id=fields.get("last_pruned_id"),
                pruned_count=fields.get("pruned_count"),
                pruned_before=fields.get("pruned_before"),
                key_id=fields.get("key_id"),
                signed=not malformed and anchor_signed(row["id"], fields, keyring, note),
            )
        )
    return anchors


def anchor_signed(
    anchor_id: int, fields: dict[str, Any], keyring: Keyring, note: ProblemSink
) -> bool:
    key_id = fields["key_id"]
    if key_id is None:
        return False
    key = keyring.get(key_id)
    if key is None:
        note(f"anchor {anchor_id}: key_id {key_id!r} is not a known proof key")
        return False
    if not same_hash(seal_anchor(fields, key), fields["mac"]):
        note(f"anchor {anchor_id} was altered or written by hand: its mac does not match")
        return False
    return True


def check_checkpoint(
    connection: Connection, kept: KeptCheckpoint, anchors: Sequence[Anchor], note: ProblemSink
) -> None:
    """The chain must still hold the checkpoint's record with its hash, or a signed anchor
    must say that record was pruned; otherwise records were removed from the end."""
    point = kept.checkpoint
    name = f"checkpoint {kept.label} (record {point.record_id}, taken {point.taken_at})"
    if point.record_id == 0:
        if point.hash != GENESIS_HASH:
            note(f"{name}: record 0 can only be the empty chain's genesis hash")
        return
    stored = connection.scalar(
        select(raw(RECORDS.c.hash, connection.dialect.name)).where(RECORDS.c.id == point.record_id)
    )
    if stored is not None:
        if stored != point.hash:
            note(f"{name}: record {point.record_id} no longer has the hash the checkpoint kept")
        return
    covering = [
        anchor
        for anchor in anchors
        if anchor.signed and (anchor.last_pruned_id or 0) >= point.record_id
    ]
    if not covering:
        note(
            f"{name}: record {point.record_id} is gone and no signed anchor says it was "
            "pruned; the chain no longer extends this checkpoint (records were removed "
            "from its end)"
        )
    elif any(a.last_pruned_id == point.record_id and a.tail_hash != point.hash for a in covering):
        note(f"{name}: the anchor that pruned record {point.record_id} kept another hash")


def verify_chain(
    *,
    checkpoints: Sequence[KeptCheckpoint] = (),
    on_problem: ProblemSink | None = None,
    keyring: Keyring | None = None,
    batch_size: int = 500,
) -> ChainReport:
    """Walk every anchor and record once, in id order, then every checkpoint given.

    Each problem is passed to ``on_problem`` as it is found (the report keeps the first
    ``KEPT_PROBLEMS``), so even a chain where every record is bad is checked in constant
    memory. The key file is read afresh and never created: verifying writes nothing.
    """
    keyring = keyring or load_keyring(current_app, create=False)
    report = ChainReport(key_ids=tuple(keyring.keys))

    def note(message: str) -> None:
        report.problem_count += 1
        if len(report.problems) < KEPT_PROBLEMS:
            report.problems.append(message)
        if on_problem is not None:
            on_problem(message)

    with db.engine.connect() as connection, tolerant_text(connection):
        anchors = check_anchors(connection, keyring, note)
        report.start = anchors[-1] if anchors else None
        walk = Walk(keyring, report, note)
        rows = connection.execution_options(yield_per=batch_size).execute(
            raw_records(connection.dialect.name)
        )
        try:
            for row in rows.mappings():
                walk.step(row)
        finally:
            rows.close()
        walk.finish()
        for kept in checkpoints:
            check_checkpoint(connection, kept, anchors, note)
            report.checkpoints += 1
    return report
