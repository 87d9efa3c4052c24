"""How long page views and timings are kept.

Page views carry the reader's random ``gu_reader`` value, and a reader can erase theirs
(``pageviews.erase_reader_views``); timings carry no value that ties them to anyone, so only
age can pick them out. The per-path counts hold no reader at all and stay as they are: they
are figures about articles, not about people.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from ..database import one_writer
from ..extensions import db
from .models import PageTiming, PageView


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """The naive UTC moment before which measurements are too old to keep."""
    moment = now or datetime.now(UTC)
    return moment.replace(tzinfo=None) - timedelta(days=days)


def delete_measurements_before(cutoff: datetime) -> tuple[int, int]:
    """Delete page views and timings made before ``cutoff``; return how many of each."""
    with one_writer(db.engine), db.engine.begin() as connection:
        views = connection.execute(delete(PageView).where(PageView.created_at < cutoff))
        timings = connection.execute(delete(PageTiming).where(PageTiming.created_at < cutoff))
    return views.rowcount, timings.rowcount
