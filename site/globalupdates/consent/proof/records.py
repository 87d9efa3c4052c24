"""Proof of consent: one append-only, chained database record per choice a reader makes.

The chain itself (signing, serialised appends, pruning) lives in ``chain.py`` and its
verification in ``verification.py``; this module holds the two tables and the shapes a
record is exported in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ...extensions import db

EXPORT_FIELDS = (
    "id",
    "consent_id",
    "created_at",
    "action",
    "categories",
    "revision",
    "notice_hash",
    "gpc",
    "prev_hash",
    "key_id",
    "hash",
    "language",
    "regime",
    "services",
)


class ConsentRecord(db.Model):  # type: ignore[name-defined]
    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(20))
    categories: Mapped[list[str]] = mapped_column(JSON)
    revision: Mapped[int]
    notice_hash: Mapped[str] = mapped_column(String(64))
    gpc: Mapped[bool]
    prev_hash: Mapped[str] = mapped_column(String(64))
    # The proof key whose HMAC ``hash`` is; None only on records made before proof keys,
    # whose ``hash`` is a plain SHA-256 (see chain.py).
    key_id: Mapped[str | None] = mapped_column(String(32))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The language of the page the choice was made on, whose notice ``notice_hash`` is the
    # digest of; None only on records made before the notice was shown in several languages.
    language: Mapped[str | None] = mapped_column(String(8))
    # The consent regime of where the reader was (``opt-in``, ``opt-out``), never the place;
    # None only on records made before regions, all of them under opt-in.
    regime: Mapped[str | None] = mapped_column(String(8))
    # The services granted inside ``categories``; None only on records made before services
    # could be chosen, which granted every service of their categories.
    services: Mapped[list[str] | None] = mapped_column(JSON)

    def as_export(self) -> dict[str, Any]:
        """Every column under its own name, in ``EXPORT_FIELDS`` order; the time as UTC text."""
        row = {name: getattr(self, name) for name in EXPORT_FIELDS}
        row["created_at"] = utc_text(self.created_at)
        row["categories"] = list(self.categories)
        row["services"] = list(self.services) if self.services is not None else None
        return row


class ChainAnchor(db.Model):  # type: ignore[name-defined]
    """Left behind by ``consent prune``: the hash of the last record it deleted.

    The first record kept still points at that hash, so the rest of the chain verifies
    from the anchor instead of from the genesis value. ``mac`` is an HMAC of the other
    fields under the proof key ``key_id``, so an anchor written by hand does not verify.
    """

    __tablename__ = "consent_chain_anchor"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    pruned_before: Mapped[datetime]
    last_pruned_id: Mapped[int]
    tail_hash: Mapped[str] = mapped_column(String(64))
    pruned_count: Mapped[int]
    key_id: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))


def as_utc(moment: datetime) -> datetime:
    """Records are stored as naive UTC, which both SQLite and PostgreSQL keep exactly."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_text(moment: datetime) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z")


class AuditReader(db.Model):  # type: ignore[name-defined]
    """A consent id whose choices were made by ``flask consent audit``, not by a reader.

    The audit's choices are real records of the chain (they verify like any other), so the
    mark lives beside the records instead of in them: ``consent stats``, the report and the
    choice metrics leave out every record of a marked consent id.
    """

    __tablename__ = "consent_audit_reader"

    consent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    marked_at: Mapped[datetime]
