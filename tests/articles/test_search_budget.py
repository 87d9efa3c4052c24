"""Search has a time budget: an article far over the import limit, stored before the limit
existed, is searched quickly, and a search that runs past its budget is stopped by the
database and answered with a 503 that says when to come back, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import insert

from globalupdates.articles.models import Article
from globalupdates.extensions import db
from tests.support.html import select

HUGE_CHARS = 3_000_000  # three times the import limit
BUDGET_MS = 2000


def dense_body(word: str, chars: int) -> str:
    """Text in which every sixth word is ``word``: the matches a snippet weighs grow with it."""
    pattern = f"{word} tide lamp quay boat gull "
    return (pattern * (chars // len(pattern) + 1))[:chars]


def store_directly(app, *articles: dict) -> None:
    """Articles written straight to the table, as an import before the limit would have."""
    with app.app_context():
        for fields in articles:
            body = fields.pop("body")
            db.session.add(
                Article(
                    headline="A long harbour story",
                    standfirst="Lamps along the quay.",
                    author="Test Author",
                    section="World",
                    published_at=datetime(2026, 1, 1),
                    modified_at=datetime(2026, 1, 1),
                    body_html=f"<p>{body}</p>",
                    body_text=body,
                    word_count=len(body.split()),
                    **fields,
                )
            )
        db.session.commit()


def timed_get(client, path: str, **query: str):
    started = time.monotonic()
    response = client.get(path, query_string=query)
    return response, time.monotonic() - started


def test_a_huge_article_stored_before_the_limit_is_searched_within_the_budget(app_factory):
    app = app_factory(SEARCH_TIME_BUDGET_MS=BUDGET_MS)
    store_directly(
        app,
        {"slug": "huge-en", "lang": "en", "body": dense_body("harbour", HUGE_CHARS)},
        {"slug": "huge-de", "lang": "de", "body": dense_body("hafen", HUGE_CHARS)},
    )
    client = app.test_client()
    for path, word, slug in (("/search", "harbour", "huge-en"), ("/de/search", "hafen", "huge-de")):
        response, took = timed_get(client, path, q=word)
        assert response.status_code == 200, (path, response.status_code)
        assert took < BUDGET_MS / 1000 + 1, (path, took)
        html = response.get_data(as_text=True)
        assert [a.get("href") for a in select(html, "main h2 a, main h3 a")] == [
            f"{path.removesuffix('/search')}/articles/{slug}"
        ]
        assert f"<mark>{word}</mark>" in html


def test_a_search_past_its_budget_is_a_503_with_retry_after_and_the_next_one_works(
    app_factory, caplog
):
    app = app_factory(SEARCH_TIME_BUDGET_MS=1)
    rows = [
        {
            "slug": f"story-{number}",
            "headline": f"Harbour story {number}",
            "standfirst": "Lamps along the quay.",
            "author": "Test Author",
            "section": "World",
            "tags": [],
            "published_at": datetime(2026, 1, 1),
            "modified_at": datetime(2026, 1, 1),
            "body_html": "<p>harbour</p>",
            "body_text": dense_body("harbour", 3000),
            "word_count": 500,
            "lang": "en",
        }
        for number in range(3000)
    ]
    with app.app_context():
        db.session.execute(insert(Article), rows)
        db.session.commit()
    client = app.test_client()
    response, took = timed_get(client, "/search", q="harbour")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"].startswith("private")
    html = response.get_data(as_text=True)
    assert "Search is taking too long just now" in html
    assert "search for 1 word(s) stopped after its budget of 1 ms" in caplog.text
    app.config["SEARCH_TIME_BUDGET_MS"] = 2000
    response = client.get("/search", query_string={"q": "harbour"})
    assert response.status_code == 200
    assert "<mark>harbour</mark>" in response.get_data(as_text=True).lower()
