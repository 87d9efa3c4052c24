"""Page views, counted in each worker's memory and written to the database once a second.

A page view is not proof of anything (the consent chain is), so the beacon does not wait for
the database: the view goes into this worker's buffer and the answer says the path's count as
this worker knows it (the stored count, read at most every ``STORED_COUNT_SECONDS``, plus the
views waiting here). A thread of the worker's own, started with its first view (a thread the
gunicorn master started would not survive the fork), writes what waits every
``PAGE_VIEW_FLUSH_SECONDS`` in one transaction: the views, then the per-path counts, with one
statement each. It stops when nothing is left to write, and the worker writes once more on its
way out. A worker killed outright (``kill -9``, a crash) loses the views it had not written:
at most one interval's, or, while the database cannot be reached, everything waiting (at most
``PAGE_VIEW_PENDING_LIMIT``).

Erasing a reader's page views (``erase_reader_views``) deletes the stored ones, drops the ones
waiting in this worker, and leaves a marker (``ReadingDataErasure``) that every flush, in any
worker on any host, reads inside its transaction: a view of that reader made up to the erasure
is dropped there. The erasure and the flushes take the same lock, so no flush can store a view
its reader erased while it ran. A marker is kept for ``PAGE_VIEW_ERASURE_MARKER_HOURS``, and a
view that waited longer than that is dropped rather than written.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

from cachetools import TTLCache
from flask import Flask, current_app
from sqlalchemy import Connection, bindparam, delete, insert, select

from ..database import error_summary, locked_transaction
from ..extensions import db
from .models import PageView, PageViewCount, ReadingDataErasure

BUFFER = "page_view_buffer"
POSTGRES_READING_DATA_LOCK = 0x6775_7669_6577  # the flushes' and erasures' advisory lock
STORED_COUNT_SECONDS = 10.0
STORED_COUNT_PATHS = 4096
MARKER_PRUNE_SECONDS = 600.0

VIEWS = PageView.__table__
COUNTS = PageViewCount.__table__
MARKERS = ReadingDataErasure.__table__
INSERT_VIEWS = insert(VIEWS)
STORED_COUNT = select(COUNTS.c.views).where(COUNTS.c.path == bindparam("path"))
ALL_MARKERS = select(MARKERS.c.reader, MARKERS.c.erased_at)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class PendingView:
    path: str
    reader: str
    created_at: datetime


class PageViewBuffer:
    """This worker's page views not yet written, and the counts it last saw stored."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["PAGE_VIEW_FLUSH_SECONDS"])
        self.limit = int(app.config["PAGE_VIEW_PENDING_LIMIT"])
        self.marker_lifetime = timedelta(hours=float(app.config["PAGE_VIEW_ERASURE_MARKER_HOURS"]))
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.stopping = threading.Event()
        self.pid = os.getpid()
        self.pending: list[PendingView] = []
        self.pending_counts: Counter[str] = Counter()
        self.stored_counts: TTLCache[str, int] = TTLCache(STORED_COUNT_PATHS, STORED_COUNT_SECONDS)
        self.thread: threading.Thread | None = None
        self.next_marker_prune = 0.0
        self.dropped = 0
        LIVE_BUFFERS.add(self)

    def add(self, path: str, reader: str) -> int:
        """Count one view of ``path``; the path's count as this worker knows it."""
        stored = self.stored_count(path)
        with self.lock:
            self.forget_the_parents_views()
            if len(self.pending) >= self.limit:
                self.drop_oldest(len(self.pending) - self.limit + 1)
            self.pending.append(PendingView(path, reader, utc_now()))
            self.pending_counts[path] += 1
            waiting = self.pending_counts[path]
            if self.thread is None:
                self.start_flushing()
        return stored + waiting

    def stored_count(self, path: str) -> int:
        with self.lock:
            known = self.stored_counts.get(path)
        if known is not None:
            return known
        with db.engine.connect() as connection:
            stored = connection.scalar(STORED_COUNT, {"path": path}) or 0
        with self.lock:
            # A flush that finished meanwhile put a newer count here; keep that one.
            return self.stored_counts.setdefault(path, stored)

    def forget_the_parents_views(self) -> None:
        """In a process forked from the one that made this buffer, its views (and thread)
        are the parent's to write, not this one's."""
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.pending, self.pending_counts, self.thread = [], Counter(), None

    def drop_oldest(self, count: int) -> None:
        """Make room (called with the lock held); the next flush says how many went."""
        dropped, self.pending = self.pending[:count], self.pending[count:]
        self.uncount(dropped)
        self.dropped += count

    def uncount(self, views: list[PendingView]) -> None:
        self.pending_counts.subtract(view.path for view in views)
        self.pending_counts = +self.pending_counts

    def drop_reader(self, reader: str) -> int:
        """Drop this worker's waiting views of ``reader``; how many there were."""
        with self.lock:
            theirs = [view for view in self.pending if view.reader == reader]
            if theirs:
                self.pending = [view for view in self.pending if view.reader != reader]
                self.uncount(theirs)
        return len(theirs)

    def start_flushing(self) -> None:
        """Start this worker's flushing thread (called with the lock held)."""
        self.thread = threading.Thread(target=self.flush_every_interval, daemon=True)
        self.thread.name = "page-view-flush"
        self.thread.start()

    def flush_every_interval(self) -> None:
        """Write every interval while views keep coming; stop when none is left to write."""
        while not self.stopping.wait(self.interval):
            with self.app.app_context():
                self.flush()
            with self.lock:
                if not self.pending:
                    self.thread = None
                    return

    def flush(self) -> int:
        """Write every waiting view in one transaction; how many were written. On failure
        they wait for the next flush."""
        with self.flush_lock:
            with self.lock:
                batch, self.pending = self.pending, []
                dropped, self.dropped = self.dropped, 0
            if dropped:
                current_app.logger.warning(
                    "%d page view(s) dropped: more than %d were waiting", dropped, self.limit
                )
            if not batch:
                return 0
            try:
                written, counts = self.write(batch)
            except Exception as error:
                with self.lock:
                    self.pending[:0] = batch
                    if len(self.pending) > self.limit:
                        self.drop_oldest(len(self.pending) - self.limit)
                current_app.logger.warning(
                    "%d page view(s) not written yet: %s", len(batch), error_summary(error)
                )
                return 0
            with self.lock:
                self.uncount(batch)
                self.stored_counts.update(counts)
            return written

    def write(self, batch: list[PendingView]) -> tuple[int, dict[str, int]]:
        """Insert the views their readers did not erase and add them to the per-path counts;
        how many were written, and the stored count of each path written to."""
        now = utc_now()
        with locked_transaction(db.engine, POSTGRES_READING_DATA_LOCK) as connection:
            erased = {row.reader: row.erased_at for row in connection.execute(ALL_MARKERS)}
            kept = [view for view in batch if self.may_keep(view, erased, now)]
            counts: dict[str, int] = {}
            if kept:
                connection.execute(INSERT_VIEWS, [view_row(view) for view in kept])
                counts = add_to_counts(connection, Counter(view.path for view in kept))
            self.prune_markers(connection, now)
            connection.commit()
        if len(kept) < len(batch):
            current_app.logger.info("%d erased page view(s) dropped", len(batch) - len(kept))
        return len(kept), counts

    def may_keep(self, view: PendingView, erased: dict[str, datetime], now: datetime) -> bool:
        """Not made before its reader's erasure, nor so long ago that a marker saying so may
        already be gone."""
        if view.created_at < now - self.marker_lifetime:
            return False
        erased_at = erased.get(view.reader)
        return erased_at is None or view.created_at > erased_at

    def prune_markers(self, connection: Connection, now: datetime) -> None:
        """Delete the markers older than their lifetime, at most every ten minutes."""
        moment = now.timestamp()
        if moment >= self.next_marker_prune:
            self.next_marker_prune = moment + MARKER_PRUNE_SECONDS
            cutoff = now - self.marker_lifetime
            connection.execute(delete(MARKERS).where(MARKERS.c.erased_at < cutoff))

    def close(self) -> None:
        """Stop the thread and write what waits (at a worker's exit, or a test's end)."""
        self.stopping.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.interval + 30)
        if self.pid == os.getpid():
            with self.app.app_context():
                self.flush()


def view_row(view: PendingView) -> dict[str, Any]:
    return {"path": view.path, "reader": view.reader, "created_at": view.created_at}


def count_upsert(build: Any, views: Counter[str]) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE … RETURNING``, one row per path, in one statement."""
    statement = build(COUNTS).values(
        [{"path": path, "views": count} for path, count in sorted(views.items())]
    )
    return statement.on_conflict_do_update(
        index_elements=[COUNTS.c.path], set_={"views": COUNTS.c.views + statement.excluded.views}
    ).returning(COUNTS.c.path, COUNTS.c.views)


def dialect_insert(connection: Connection) -> Any:
    """The connection's own dialect's ``insert`` (the one with ON CONFLICT), imported from that
    dialect alone: a site on SQLite never loads PostgreSQL's dialect (about 1.7 MB)."""
    return import_module(f"sqlalchemy.dialects.{connection.dialect.name}").insert


def add_to_counts(connection: Connection, views: Counter[str]) -> dict[str, int]:
    statement = count_upsert(dialect_insert(connection), views)
    return {row.path: row.views for row in connection.execute(statement)}


def marker_upsert(build: Any) -> Any:
    """Mark a reader erased now, or again (a second erasure moves the moment on)."""
    statement = build(MARKERS)
    return statement.on_conflict_do_update(
        index_elements=[MARKERS.c.reader], set_={"erased_at": statement.excluded.erased_at}
    )


def erase_reader_views(reader: str) -> int:
    """Delete every page view counted under one reader value, the stored ones and those
    waiting in this worker, and mark the value erased for the views waiting elsewhere;
    return how many were deleted here."""
    buffer = current_app.extensions.get(BUFFER)
    dropped = buffer.drop_reader(reader) if buffer is not None else 0
    with locked_transaction(db.engine, POSTGRES_READING_DATA_LOCK) as connection:
        deleted = connection.execute(delete(VIEWS).where(VIEWS.c.reader == reader)).rowcount
        connection.execute(
            marker_upsert(dialect_insert(connection)), {"reader": reader, "erased_at": utc_now()}
        )
        connection.commit()
    return deleted + dropped


LIVE_BUFFERS: weakref.WeakSet[PageViewBuffer] = weakref.WeakSet()


def page_view_buffer() -> PageViewBuffer:
    """This worker's buffer for the current app, made at its first view."""
    buffer = current_app.extensions.get(BUFFER)
    if buffer is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        buffer = app.extensions.setdefault(BUFFER, PageViewBuffer(app))
    return buffer


def flush_page_views(app: Flask) -> int:
    """Write what waits in this worker now; how many views were written."""
    buffer = app.extensions.get(BUFFER)
    if buffer is None:
        return 0
    with app.app_context():
        return buffer.flush()


def close_page_views(app: Flask) -> None:
    buffer = app.extensions.pop(BUFFER, None)
    if buffer is not None:
        buffer.close()


@atexit.register
def write_every_buffer_at_exit() -> None:
    """A worker stopping (gunicorn's graceful stop, a reload, ``max_requests``) writes what
    it still holds; only a worker killed outright loses it."""
    for buffer in list(LIVE_BUFFERS):
        buffer.close()
