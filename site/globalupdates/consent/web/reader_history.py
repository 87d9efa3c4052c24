"""A reader's own consent records, found only by the consent ID in their own session.

The ID is never taken from a URL or a form: a reader can see the history of the choice their
signed session holds, and no other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ...extensions import db
from ..proof.records import ConsentRecord, utc_text

HISTORY_FIELDS = (
    "created_at",
    "action",
    "categories",
    "revision",
    "notice_hash",
    "language",
    "gpc",
    "hash",
    "services",
)


def records_of(consent_id: str) -> list[ConsentRecord]:
    """Every record made under ``consent_id``, newest first."""
    statement = (
        select(ConsentRecord)
        .where(ConsentRecord.consent_id == consent_id)
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc())
    )
    return list(db.session.scalars(statement))


def history_entry(record: ConsentRecord) -> dict[str, Any]:
    """What a reader is shown of one record: the choice and its proof, not the chain's links."""
    entry = {name: getattr(record, name) for name in HISTORY_FIELDS}
    entry["created_at"] = utc_text(record.created_at)
    entry["categories"] = list(record.categories)
    entry["services"] = list(record.services) if record.services is not None else None
    return entry
