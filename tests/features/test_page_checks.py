"""The beacon counts only pages that exist, and learns which paths are pages once per content
version instead of asking the database on every beacon."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from globalupdates.articles.importer import import_paths
from globalupdates.extensions import db
from tests.support.apps import CONTENT_DIR
from tests.support.articles import article_markdown
from tests.support.consent import SAME_ORIGIN, choose
from tests.support.pages import ARTICLE


@contextmanager
def article_lookups(app) -> Iterator[list[str]]:
    """The statements that look an article up by its slug, run inside the block."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        if "article.slug =" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def counting_reader(app):
    reader = app.test_client()
    choose(reader, "save", ("analytics",))
    return reader


def beacon(reader, path: str):
    return reader.post("/features/pageview", json={"path": path}, headers=SAME_ORIGIN)


def test_a_page_seen_once_is_known_without_asking_the_database(app_factory):
    app = app_factory()
    with app.app_context():
        import_paths([CONTENT_DIR])
    reader = counting_reader(app)
    assert beacon(reader, ARTICLE).status_code == 200
    with article_lookups(app) as lookups:
        assert [beacon(reader, ARTICLE).status_code for _ in range(3)] == [200] * 3
    assert lookups == []


def test_a_path_that_is_no_page_is_refused_every_time_and_looked_up_once(app_factory):
    app = app_factory()
    with app.app_context():
        import_paths([CONTENT_DIR])
    reader = counting_reader(app)
    with article_lookups(app) as lookups:
        statuses = [beacon(reader, "/articles/never-published").status_code for _ in range(4)]
    assert statuses == [400] * 4
    assert len(lookups) == 1


@pytest.mark.edits_show_at_once
def test_an_article_imported_later_is_counted_once_the_content_version_moves(app, tmp_path):
    reader = counting_reader(app)
    assert beacon(reader, "/articles/late-news").status_code == 400
    (tmp_path / "late-news.md").write_text(article_markdown("late-news"), encoding="utf-8")
    with app.app_context():
        import_paths([tmp_path])
    assert beacon(reader, "/articles/late-news").status_code == 200
