"""Page views are counted in the worker's memory and written together, at least once a
second, in one transaction; an erasure reaches the views still waiting in other workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from globalupdates.articles.importer import import_paths
from globalupdates.extensions import db
from globalupdates.features import pageviews
from globalupdates.features.models import PageView, PageViewCount, ReadingDataErasure
from globalupdates.features.pageviews import flush_page_views
from tests.support.apps import CONTENT_DIR
from tests.support.consent import SAME_ORIGIN, choose
from tests.support.pages import ARTICLE

HELD = {"PAGE_VIEW_FLUSH_SECONDS": 3600}  # nothing written but by an explicit flush
ERASE = "/features/reading-data/erase"


def site(app_factory, **settings):
    app = app_factory(**settings)
    with app.app_context():
        import_paths([CONTENT_DIR])
    return app


def counting_reader(app):
    reader = app.test_client()
    choose(reader, "save", ("analytics",))
    return reader


def beacon(reader, path: str = ARTICLE) -> int:
    response = reader.post("/features/pageview", json={"path": path}, headers=SAME_ORIGIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["views"]


def stored_views(app, reader_value: str | None = None) -> int:
    query = select(func.count()).select_from(PageView)
    if reader_value is not None:
        query = query.where(PageView.reader == reader_value)
    with app.app_context():
        return db.session.scalar(query) or 0


def stored_count(app, path: str = ARTICLE) -> int:
    with app.app_context():
        return db.session.scalar(select(PageViewCount.views).where(PageViewCount.path == path))


@contextmanager
def statements(app) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    def commit(_conn) -> None:
        seen.append("COMMIT")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
        event.remove(engine, "commit", commit)


def test_a_beacon_answers_from_memory_and_the_flush_writes_its_views(app_factory):
    app = site(app_factory, **HELD)
    reader = counting_reader(app)
    assert beacon(reader) == 1
    with statements(app) as asked:
        assert [beacon(reader) for _ in range(3)] == [2, 3, 4]
    assert asked == [], "a beacon asked the database"
    assert stored_views(app) == 0
    with statements(app) as flushed:
        assert flush_page_views(app) == 4
    assert flushed.count("COMMIT") == 1 and flushed.count("INSERT") == 2  # views, counts
    assert stored_views(app) == 4 and stored_count(app) == 4
    assert beacon(reader) == 5


def test_the_workers_own_thread_writes_the_views_within_a_second(app_factory):
    app = site(app_factory)
    reader = counting_reader(app)
    for _ in range(3):
        beacon(reader)
    deadline = time.monotonic() + 15  # a second as configured; the rest is a busy machine
    while stored_views(app) < 3:
        assert time.monotonic() < deadline, "the views were never written"
        time.sleep(0.1)
    assert stored_count(app) == 3


class FailingCommit:
    def __init__(self, app) -> None:
        with app.app_context():
            self.engine = db.engine

    def __enter__(self) -> None:
        event.listen(self.engine, "commit", self.fail)

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "commit", self.fail)

    @staticmethod
    def fail(_conn) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))


def test_views_wait_through_a_failed_write_and_are_written_by_the_next(app_factory):
    app = site(app_factory, **HELD)
    reader = counting_reader(app)
    for _ in range(2):
        beacon(reader)
    with FailingCommit(app):
        assert flush_page_views(app) == 0
    assert stored_views(app) == 0
    assert beacon(reader) == 3
    assert flush_page_views(app) == 3
    assert stored_views(app) == 3 and stored_count(app) == 3


def test_beyond_the_limit_the_oldest_waiting_views_are_dropped_and_said(app_factory, caplog):
    app = site(app_factory, PAGE_VIEW_PENDING_LIMIT=3, **HELD)
    reader = counting_reader(app)
    for _ in range(5):
        beacon(reader)
    assert flush_page_views(app) == 3
    assert "2 page view(s) dropped" in caplog.text


def test_an_erasure_through_another_worker_reaches_views_still_waiting(app_factory):
    """Two workers on one database: a reader's views wait in the first, the reader erases
    through the second, then the first writes what it holds: nothing of that reader."""
    first = site(app_factory, **HELD)
    second = app_factory(**HELD)
    leaving, staying = counting_reader(first), counting_reader(first)
    for _ in range(3):
        beacon(leaving)
        beacon(staying)
    assert flush_page_views(first) == 6
    for _ in range(2):
        beacon(leaving)
        beacon(staying)
    leaving_value = leaving.get_cookie("gu_reader").value
    elsewhere = second.test_client()
    elsewhere.set_cookie("gu_reader", leaving_value)
    erased = elsewhere.post(ERASE, headers=SAME_ORIGIN)
    assert erased.headers["Location"] == "/consent?erased=3#reading-data"
    assert flush_page_views(first) == 2
    assert stored_views(first, leaving_value) == 0
    assert stored_views(first, staying.get_cookie("gu_reader").value) == 5


def test_a_view_made_after_the_erasure_is_kept(app_factory):
    first = site(app_factory, **HELD)
    reader = counting_reader(first)
    beacon(reader)
    value = reader.get_cookie("gu_reader").value
    assert reader.post(ERASE, headers=SAME_ORIGIN).status_code == 303
    assert flush_page_views(first) == 0
    time.sleep(0.01)
    reader.set_cookie("gu_reader", value)  # a tab that still sends the old value
    beacon(reader)
    assert flush_page_views(first) == 1
    assert stored_views(first, value) == 1


def test_markers_and_views_older_than_the_marker_lifetime_go(app_factory, monkeypatch):
    app = site(app_factory, PAGE_VIEW_ERASURE_MARKER_HOURS=1, **HELD)
    reader = counting_reader(app)
    assert reader.post(ERASE, headers=SAME_ORIGIN).status_code == 303
    beacon(reader)
    later = pageviews.utc_now() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(pageviews, "utc_now", lambda: later)
    assert flush_page_views(app) == 0, "a view that waited past the markers' lifetime"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReadingDataErasure)) == 0
