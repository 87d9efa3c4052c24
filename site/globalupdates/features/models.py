from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class PageView(db.Model):  # type: ignore[name-defined]
    """One counted view, sent by the analytics beacon of a reader who granted analytics."""

    __tablename__ = "page_view"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(300), index=True)
    reader: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class PageViewCount(db.Model):  # type: ignore[name-defined]
    """How many views each path has, kept beside the views so a beacon never counts rows."""

    __tablename__ = "page_view_count"

    path: Mapped[str] = mapped_column(String(300), primary_key=True)
    views: Mapped[int]


class PageTiming(db.Model):  # type: ignore[name-defined]
    """Navigation Timing figures, in milliseconds, from a reader who granted performance."""

    __tablename__ = "page_timing"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(300), index=True)
    created_at: Mapped[datetime]
    time_to_first_byte: Mapped[int]
    dom_content_loaded: Mapped[int]
    load_event: Mapped[int]


class ReadingDataErasure(db.Model):  # type: ignore[name-defined]
    """A reader value whose page views were erased, and when: every flush of page views
    still waiting in a worker's memory (on any host) drops that reader's views made up to
    then. Kept for ``PAGE_VIEW_ERASURE_MARKER_HOURS``, longer than a view may wait."""

    __tablename__ = "reading_data_erasure"

    reader: Mapped[str] = mapped_column(String(32), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(index=True)
