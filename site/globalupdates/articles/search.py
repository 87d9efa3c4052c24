"""Full-text search with the database's own index: SQLite FTS5 or PostgreSQL ``tsvector``.

The reader's words are reduced to plain terms before they reach either engine, so nothing
they type can act as query syntax (FTS5 column filters, ``NEAR``, quotes, ``&``/``|``).
Highlights come back wrapped in two control characters that the imported text never holds;
the text is escaped first and only then are those turned into ``<mark>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext
from markupsafe import Markup, escape
from sqlalchemy import text

from ..extensions import db
from .models import Article

MAX_QUERY_LENGTH = 200
MAX_TERMS = 12
RESULT_LIMIT = 20
WORD = re.compile(r"\w+")
START, STOP = "\x02", "\x03"
HIGHLIGHT = re.compile(f"{START}([^{START}{STOP}]*){STOP}")

SQLITE_SEARCH = text(
    """
    SELECT a.id AS id,
           highlight(article_search, 0, char(2), char(3)) AS headline,
           snippet(article_search, -1, char(2), char(3), ' … ', 28) AS snippet
    FROM article_search JOIN article AS a ON a.id = article_search.rowid
    WHERE article_search MATCH :query
    ORDER BY bm25(article_search, 10.0, 4.0, 1.0), a.published_at DESC
    LIMIT :limit
    """
)
SQLITE_COUNT = text("SELECT count(*) FROM article_search WHERE article_search MATCH :query")

POSTGRESQL_OPTIONS = (
    "'StartSel=' || chr(2) || ', StopSel=' || chr(3) || "
    "', MaxWords=32, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \"'"
)
POSTGRESQL_SEARCH = text(
    f"""
    SELECT a.id AS id,
           ts_headline('english', a.headline, q,
                       'HighlightAll=true, StartSel=' || chr(2) || ', StopSel=' || chr(3))
               AS headline,
           ts_headline('english', a.standfirst || ' ' || a.body_text, q, {POSTGRESQL_OPTIONS})
               AS snippet
    FROM article AS a, plainto_tsquery('english', :query) AS q
    WHERE a.search_vector @@ q
    ORDER BY ts_rank_cd(a.search_vector, q) DESC, a.published_at DESC
    LIMIT :limit
    """
)
POSTGRESQL_COUNT = text(
    "SELECT count(*) FROM article WHERE search_vector @@ plainto_tsquery('english', :query)"
)


class SearchQueryError(ValueError):
    """A query that cannot be searched; the message is written for the reader."""


@dataclass(frozen=True)
class SearchHit:
    article: Article
    headline: Markup
    snippet: Markup


@dataclass(frozen=True)
class SearchResults:
    terms: tuple[str, ...]
    hits: tuple[SearchHit, ...]
    total: int


def search_terms(query: str) -> tuple[str, ...]:
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchQueryError(
            gettext(
                "Your search is %(length)d characters long; please use at most %(limit)d.",
                length=len(query),
                limit=MAX_QUERY_LENGTH,
            )
        )
    terms = tuple(dict.fromkeys(WORD.findall(query.lower())))
    if not terms:
        raise SearchQueryError(
            gettext("Your search has no letters or digits to look for. Try a word from a headline.")
        )
    return terms[:MAX_TERMS]


def search_articles(query: str) -> SearchResults:
    terms = search_terms(query)
    if db.engine.dialect.name == "postgresql":
        search, count, bound = POSTGRESQL_SEARCH, POSTGRESQL_COUNT, " ".join(terms)
    else:
        search, count, bound = SQLITE_SEARCH, SQLITE_COUNT, " ".join(f'"{t}"' for t in terms)
    rows = db.session.execute(search, {"query": bound, "limit": RESULT_LIMIT}).all()
    total = db.session.scalar(count, {"query": bound}) or 0
    articles = {
        a.id: a
        for a in db.session.scalars(db.select(Article).where(Article.id.in_([r.id for r in rows])))
    }
    hits = tuple(
        SearchHit(
            article=articles[row.id],
            headline=highlighted(row.headline),
            snippet=highlighted(row.snippet),
        )
        for row in rows
        if row.id in articles
    )
    return SearchResults(terms=terms, hits=hits, total=total)


def highlighted(fragment: str | None) -> Markup:
    """Escape the engine's text, then mark the matched words."""
    escaped = str(escape(fragment or ""))
    marked = HIGHLIGHT.sub(r"<mark>\1</mark>", escaped)
    return Markup(marked.replace(START, "").replace(STOP, ""))
