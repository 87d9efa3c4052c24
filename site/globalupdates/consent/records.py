"""Proof of consent: one append-only database record per choice a reader makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


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

    def as_export(self) -> dict[str, Any]:
        return {
            "consent_id": self.consent_id,
            "created_at": as_utc(self.created_at).isoformat().replace("+00:00", "Z"),
            "action": self.action,
            "categories": list(self.categories),
            "revision": self.revision,
            "notice_hash": self.notice_hash,
            "gpc": self.gpc,
        }


def as_utc(moment: datetime) -> datetime:
    """Records are stored as naive UTC, which both SQLite and PostgreSQL keep exactly."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def append_record(
    *,
    consent_id: str,
    created_at: datetime,
    action: str,
    categories: list[str],
    revision: int,
    notice_hash: str,
    gpc: bool,
) -> ConsentRecord:
    record = ConsentRecord(
        consent_id=consent_id,
        created_at=as_utc(created_at).replace(tzinfo=None),
        action=action,
        categories=categories,
        revision=revision,
        notice_hash=notice_hash,
        gpc=gpc,
    )
    db.session.add(record)
    db.session.commit()
    return record


def export_lines(batch_size: int = 500) -> Iterator[str]:
    """Every record as a JSON line, oldest first, fetched in batches to keep memory flat."""
    query = (
        db.select(ConsentRecord).order_by(ConsentRecord.id).execution_options(yield_per=batch_size)
    )
    for record in db.session.scalars(query):
        yield json.dumps(record.as_export(), separators=(",", ":")) + "\n"
