"""Full-text search with the database's own index, in the language of the edition.

An edition searches only its own articles, and reduces the reader's words the way its language
inflects them, so that "Nachtzügen" finds a story that says "Nachtzug":

- PostgreSQL: ``article.search_vector`` is built with the text search configuration of each
  row's language (``english``, ``german``, ``french``) and queried with the edition's.
- SQLite: FTS5 stems English only (Porter), so English articles are in ``article_search``
  (kept by triggers, highlighted by FTS5), and every other language's in
  ``article_search_stems``, which holds the words already reduced by Snowball's stemmer for
  that language. Nothing in SQLite can run the stemmer, so the rows are written here whenever
  an article is inserted or updated through the models (a trigger removes a deleted one's);
  the reader's words go through the same stemmer, and the matches are marked here.

The reader's words are reduced to plain terms before they reach either engine, so nothing
they type can act as query syntax (FTS5 column filters, ``NEAR``, quotes, ``&``/``|``).
Highlights come back wrapped in two control characters that the imported text never holds;
the text is escaped first and only then are those turned into ``<mark>``.

A search has a time budget (``SEARCH_TIME_BUDGET_MS``): PostgreSQL's ``statement_timeout`` set
for the search's own transaction, and on SQLite a progress handler that interrupts the
statement once the budget is spent; either way the reader gets a ``503`` with ``Retry-After``
instead of a thread held for as long as the database takes. The snippet is cut from at most
the first ``SNIPPET_SCAN_CHARS`` of an article (FTS5's ``snippet()`` grows with the square of
the matches in the text), so even an article far over the import limit, stored before it
existed, is searched in a fraction of the budget.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import snowballstemmer
from cachetools import LRUCache, cached
from flask import current_app
from flask_babel import gettext
from markupsafe import Markup, escape
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapper

from ..extensions import db
from .listing import without_diacritics
from .models import Article

MAX_QUERY_LENGTH = 200
STEMS_KEPT = 65536
MAX_TERMS = 12
RESULT_LIMIT = 20
WORD = re.compile(r"\w+")
START, STOP = "\x02", "\x03"
HIGHLIGHT = re.compile(f"{START}([^{START}{STOP}]*){STOP}")

# The language FTS5's own Porter stemmer is for; every other one is stemmed here.
PORTER_LANGUAGE = "en"
# Snowball's stemmer for each language; a language without one is searched word for word.
SNOWBALL_ALGORITHMS = {"de": "german", "fr": "french", "en": "english"}
# PostgreSQL's text search configuration per language: the migration f7b2d4e6a813 indexes each
# row with its language's, and an edition queries with its own.
POSTGRESQL_CONFIGS = {"en": "english", "de": "german", "fr": "french"}
POSTGRESQL_FALLBACK_CONFIG = "simple"
SNIPPET_WORDS = 28  # as many words as FTS5's snippet gives English results
SNIPPET_LEAD = 6  # words shown before the first match of a snippet
ELLIPSIS = " … "
# The most of an article's standfirst and body a snippet is cut from: about twice the longest
# feature. Past it FTS5's snippet() is skipped and the snippet is cut here, from this much.
SNIPPET_SCAN_CHARS = 100_000
# PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
QUERY_CANCELED_STATE = "57014"
# SQLite calls the progress handler every this many virtual machine instructions.
SQLITE_PROGRESS_STEPS = 1000

SQLITE_SEARCH = text(
    """
    SELECT a.id AS id,
           highlight(article_search, 0, char(2), char(3)) AS headline,
           CASE WHEN length(a.standfirst) + length(a.body_text) < :scan_chars
                THEN snippet(article_search, -1, char(2), char(3), ' … ', 28) END AS snippet
    FROM article_search JOIN article AS a ON a.id = article_search.rowid
    WHERE article_search MATCH :query AND a.lang = :lang
    ORDER BY bm25(article_search, 10.0, 4.0, 1.0), a.published_at DESC
    LIMIT :limit
    """
)
SQLITE_COUNT = text(
    """
    SELECT count(*) FROM article_search JOIN article AS a ON a.id = article_search.rowid
    WHERE article_search MATCH :query AND a.lang = :lang
    """
)
SQLITE_STEMS_SEARCH = text(
    """
    SELECT a.id AS id, NULL AS headline, NULL AS snippet
    FROM article_search_stems JOIN article AS a ON a.id = article_search_stems.rowid
    WHERE article_search_stems MATCH :query AND a.lang = :lang
    ORDER BY bm25(article_search_stems, 10.0, 4.0, 1.0), a.published_at DESC
    LIMIT :limit
    """
)
SQLITE_STEMS_COUNT = text(
    """
    SELECT count(*) FROM article_search_stems JOIN article AS a
        ON a.id = article_search_stems.rowid
    WHERE article_search_stems MATCH :query AND a.lang = :lang
    """
)
SQLITE_STEMS_DELETE = text("DELETE FROM article_search_stems WHERE rowid = :id")
SQLITE_STEMS_INSERT = text(
    """
    INSERT INTO article_search_stems(rowid, headline, standfirst, body_text)
    VALUES (:id, :headline, :standfirst, :body_text)
    """
)

POSTGRESQL_OPTIONS = (
    "'StartSel=' || chr(2) || ', StopSel=' || chr(3) || "
    "', MaxWords=32, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \"'"
)
POSTGRESQL_SEARCH = text(
    f"""
    SELECT a.id AS id,
           ts_headline(CAST(:config AS regconfig), a.headline, q,
                       'HighlightAll=true, StartSel=' || chr(2) || ', StopSel=' || chr(3))
               AS headline,
           ts_headline(CAST(:config AS regconfig),
                       left(a.standfirst || ' ' || a.body_text, :scan_chars), q,
                       {POSTGRESQL_OPTIONS})
               AS snippet
    FROM article AS a, plainto_tsquery(CAST(:config AS regconfig), :query) AS q
    WHERE a.lang = :lang AND a.search_vector @@ q
    ORDER BY ts_rank_cd(a.search_vector, q) DESC, a.published_at DESC
    LIMIT :limit
    """
)
POSTGRESQL_COUNT = text(
    """
    SELECT count(*) FROM article
    WHERE lang = :lang
      AND search_vector @@ plainto_tsquery(CAST(:config AS regconfig), :query)
    """
)


class SearchQueryError(ValueError):
    """A query that cannot be searched; the message is written for the reader."""


class SearchOverBudget(RuntimeError):
    """The database was stopped after the search's time budget; nothing was found."""


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


def search_articles(query: str, lang: str) -> SearchResults:
    """The articles in ``lang`` holding every word of ``query`` in some form, best first."""
    terms = search_terms(query)
    if db.engine.dialect.name == "postgresql":
        return run_search(
            terms,
            POSTGRESQL_SEARCH,
            POSTGRESQL_COUNT,
            {
                "query": " ".join(terms),
                "config": POSTGRESQL_CONFIGS.get(lang, POSTGRESQL_FALLBACK_CONFIG),
                "lang": lang,
            },
        )
    if lang == PORTER_LANGUAGE:
        bound = {"query": " ".join(f'"{t}"' for t in terms), "lang": lang}
        return run_search(terms, SQLITE_SEARCH, SQLITE_COUNT, bound)
    wanted = frozenset(stems(" ".join(terms), lang))
    bound = {"query": " ".join(f'"{s}"' for s in sorted(wanted)), "lang": lang}
    return run_search(
        terms, SQLITE_STEMS_SEARCH, SQLITE_STEMS_COUNT, bound, mark=StemMarker(wanted, lang)
    )


def run_search(
    terms: tuple[str, ...],
    search: Any,
    count: Any,
    bound: dict[str, str],
    mark: StemMarker | None = None,
) -> SearchResults:
    with time_budget(current_app.config["SEARCH_TIME_BUDGET_MS"], terms):
        rows = db.session.execute(
            search, {**bound, "limit": RESULT_LIMIT, "scan_chars": SNIPPET_SCAN_CHARS}
        ).all()
        total = db.session.scalar(count, bound) or 0
    articles = {
        a.id: a
        for a in db.session.scalars(db.select(Article).where(Article.id.in_([r.id for r in rows])))
    }
    hits = []
    for row in rows:
        article = articles.get(row.id)
        if article is None:
            continue
        if mark is None:
            headline, snippet = row.headline, row.snippet
            if snippet is None:
                marker = StemMarker(frozenset(stems(" ".join(terms), article.lang)), article.lang)
                snippet = marker.snippet(scanned_text(article))
        else:
            headline = mark.words(article.headline)
            snippet = mark.snippet(scanned_text(article))
        hits.append(
            SearchHit(article=article, headline=highlighted(headline), snippet=highlighted(snippet))
        )
    return SearchResults(terms=terms, hits=tuple(hits), total=total)


def scanned_text(article: Article) -> str:
    """The part of an article a snippet is cut from."""
    return f"{article.standfirst} {article.body_text}"[:SNIPPET_SCAN_CHARS]


@contextmanager
def time_budget(milliseconds: int, terms: tuple[str, ...]) -> Iterator[None]:
    """Run the statements inside within ``milliseconds`` of database time, or raise
    ``SearchOverBudget`` with the session rolled back."""
    connection = db.session.connection()
    deadline = time.monotonic() + milliseconds / 1000
    sqlite = connection.dialect.name == "sqlite"
    raw: Any = connection.connection.dbapi_connection
    if sqlite:
        raw.set_progress_handler(lambda: time.monotonic() > deadline, SQLITE_PROGRESS_STEPS)
    else:
        connection.execute(
            text("SELECT set_config('statement_timeout', :timeout, true)"),
            {"timeout": str(max(1, int(milliseconds)))},
        )
    try:
        yield
    except OperationalError as error:
        if not was_stopped_for_time(error, sqlite, deadline):
            raise
        db.session.rollback()
        current_app.logger.warning(
            "search for %d word(s) stopped after its budget of %d ms", len(terms), milliseconds
        )
        raise SearchOverBudget() from error
    finally:
        if sqlite:
            raw.set_progress_handler(None, 0)


def was_stopped_for_time(error: OperationalError, sqlite: bool, deadline: float) -> bool:
    if sqlite:
        return str(error.orig) == "interrupted" and time.monotonic() > deadline
    original = error.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return bool(state == QUERY_CANCELED_STATE)


def highlighted(fragment: str | None) -> Markup:
    """Escape the engine's text, then mark the matched words."""
    escaped = str(escape(fragment or ""))
    marked = HIGHLIGHT.sub(r"<mark>\1</mark>", escaped)
    return Markup(marked.replace(START, "").replace(STOP, ""))


# Snowball's stemmers keep state while they work, so each thread has its own.
_stemmers = threading.local()


def stemmer(lang: str) -> Callable[[str], str]:
    """The stemming function for ``lang``; a language Snowball lacks keeps its words whole."""
    cache: dict[str, Callable[[str], str]] = _stemmers.__dict__.setdefault("by_language", {})
    found = cache.get(lang)
    if found is None:
        algorithm = SNOWBALL_ALGORITHMS.get(lang)
        found = snowballstemmer.stemmer(algorithm).stemWord if algorithm else str
        cache[lang] = found
    return found


@cached(LRUCache(maxsize=STEMS_KEPT), lock=threading.Lock())
def stem_of(word: str, lang: str) -> str:
    """A word as the index holds it: stemmed, then without diacritics, so that a reader who
    types "recoltes" finds "récoltes". Kept (``STEMS_KEPT`` words per worker, least recently
    used out first), since a language's stories share most of their words and Snowball in
    Python takes tens of microseconds a word."""
    return without_diacritics(stemmer(lang)(word.lower()))


def stems(text: str, lang: str) -> list[str]:
    """The words of ``text`` as ``article_search_stems`` holds them, in order."""
    return [stem_of(match.group(), lang) for match in WORD.finditer(text)]


Words = list[tuple[re.Match[str], bool]]  # each word of a text, and whether it was searched for


class StemMarker:
    """Marks, in an article's own text, the words whose stems the reader searched for."""

    def __init__(self, wanted: frozenset[str], lang: str) -> None:
        self.wanted = wanted
        self.lang = lang

    def matches(self, text: str) -> Words:
        return [(m, stem_of(m.group(), self.lang) in self.wanted) for m in WORD.finditer(text)]

    def words(self, text: str) -> str:
        """The whole text, its searched words marked."""
        return marked(text, self.matches(text), 0, len(text))

    def snippet(self, text: str) -> str:
        """About ``SNIPPET_WORDS`` words of the text: the stretch holding the most of the
        searched words, opening a few words before the first of them."""
        words = self.matches(text)
        if len(words) <= SNIPPET_WORDS:
            return marked(text, words, 0, len(text))
        starts = [max(0, i - SNIPPET_LEAD) for i, (_, hit) in enumerate(words) if hit] or [0]
        first = min(
            max(
                starts, key=lambda start: (self.score(words[start : start + SNIPPET_WORDS]), -start)
            ),
            len(words) - SNIPPET_WORDS,
        )
        last = first + SNIPPET_WORDS
        begin = 0 if first == 0 else words[first][0].start()
        end = len(text) if last == len(words) else words[last - 1][0].end()
        lead = "" if first == 0 else ELLIPSIS.lstrip()
        tail = "" if last == len(words) else ELLIPSIS.rstrip()
        return lead + marked(text, words[first:last], begin, end) + tail

    def score(self, window: Words) -> tuple[int, int]:
        """How many different searched words a stretch holds, then how many in all."""
        found = [stem_of(m.group(), self.lang) for m, hit in window if hit]
        return len(set(found)), len(found)


def marked(text: str, words: Words, begin: int, end: int) -> str:
    """``text[begin:end]`` with each searched word among ``words`` between START and STOP."""
    pieces, last = [], begin
    for match, hit in words:
        if hit:
            pieces += [text[last : match.start()], START, match.group(), STOP]
            last = match.end()
    pieces.append(text[last:end])
    return "".join(pieces)


def index_stems(connection: Connection, article: Article) -> None:
    """Write ``article``'s row of ``article_search_stems`` (none for an English one)."""
    connection.execute(SQLITE_STEMS_DELETE, {"id": article.id})
    if article.lang == PORTER_LANGUAGE:
        return
    connection.execute(
        SQLITE_STEMS_INSERT,
        {
            "id": article.id,
            "headline": " ".join(stems(article.headline, article.lang)),
            "standfirst": " ".join(stems(article.standfirst, article.lang)),
            "body_text": " ".join(stems(article.body_text or "", article.lang)),
        },
    )


@event.listens_for(Article, "after_insert")
@event.listens_for(Article, "after_update")
def keep_stems_current(mapper: Mapper[Any], connection: Connection, article: Article) -> None:
    if connection.dialect.name == "sqlite":
        index_stems(connection, article)
