"""Which articles a page lists: sections, tags, related stories.

Every list is of one language: the edition's (``i18n.reader_locale()``), which views pass in
as ``lang``. A story is listed only in the edition of its own language.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Select, func
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..i18n import reader_locale
from .models import Article, ArticleTag

NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Letters that Unicode does not decompose into a plain letter and a mark.
LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l"})
SECTIONS_TTL_SECONDS = 60.0
RELATED_LIMIT = 3


def without_diacritics(text: str) -> str:
    """ "Société" as "Societe", "Straße" as "Strasse"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def slugify(name: str) -> str:
    """A section's or tag's name as a path segment: "Société" is "societe"."""
    return NOT_SLUG.sub("-", without_diacritics(name.lower())).strip("-")


@dataclass(frozen=True)
class Section:
    name: str
    slug: str
    lang: str


@dataclass
class SectionCache:
    """Sections change only at import, so a worker asks the database at most once a minute
    for each language."""

    sections: dict[str, tuple[Section, ...]] = field(default_factory=dict)
    fetched_at: dict[str, float] = field(default_factory=dict)
    content_version: tuple[int, str] | None = None


def content_version() -> tuple[int, str]:
    """How many articles there are and when any of them last changed; an import or an edit
    moves it. A change also refreshes the section list, so the navigation follows at once."""
    count, newest = db.session.execute(
        db.select(func.count(Article.id), func.max(Article.modified_at))
    ).one()
    version = (count, newest.isoformat() if newest else "")
    cache: SectionCache = current_app.extensions["articles"].sections
    if cache.content_version != version:
        cache.content_version = version
        cache.fetched_at.clear()
    return version


def newest_first(statement: Select) -> Select:
    return statement.order_by(Article.published_at.desc(), Article.id.desc())


def edition_articles(lang: str) -> Select:
    """Every story of one edition, newest first: its front page and its feed."""
    return newest_first(db.select(Article).where(Article.lang == lang))


def all_sections(lang: str | None = None, refresh: bool = False) -> tuple[Section, ...]:
    """The sections of the edition in ``lang`` (the page's, when not given), by name."""
    lang = lang or reader_locale()
    cache: SectionCache = current_app.extensions["articles"].sections
    now = time.monotonic()
    if refresh or now - cache.fetched_at.get(lang, float("-inf")) > SECTIONS_TTL_SECONDS:
        try:
            names = list(
                db.session.scalars(
                    db.select(Article.section)
                    .where(Article.lang == lang, Article.section != "")
                    .distinct()
                )
            )
        except SQLAlchemyError:
            # The navigation is also drawn on the "database unavailable" page.
            db.session.rollback()
            return cache.sections.get(lang, ())
        sections = (Section(name, slugify(name), lang) for name in names)
        cache.sections[lang] = tuple(sorted(sections, key=_by_name))
        cache.fetched_at[lang] = now
    return cache.sections[lang]


def _by_name(section: Section) -> tuple[str, str]:
    """Alphabetical as readers expect it: "Économie" before "Régions"."""
    return without_diacritics(section.name).casefold(), section.name


def find_section(slug: str, lang: str) -> Section | None:
    """A section of the edition in ``lang`` by its slug; a miss asks the database again, so
    a new section is found as soon as it is imported, not a minute later."""
    for sections in (all_sections(lang), all_sections(lang, refresh=True)):
        found = next((s for s in sections if s.slug == slug), None)
        if found is not None:
            return found
    return None


def section_articles(section: Section) -> Select:
    return newest_first(
        db.select(Article).where(Article.lang == section.lang, Article.section == section.name)
    )


def tag_articles(tag: str, lang: str) -> Select:
    return newest_first(
        db.select(Article).join(ArticleTag).where(ArticleTag.tag == tag, Article.lang == lang)
    )


def related_articles(article: Article) -> list[Article]:
    """Other stories in the same language sharing the most tags with this one, newest first
    among equals."""
    if not article.tags:
        return []
    shared = func.count(ArticleTag.tag).label("shared")
    statement = (
        db.select(Article)
        .join(ArticleTag)
        .where(
            ArticleTag.tag.in_(article.tags),
            Article.lang == article.lang,
            Article.id != article.id,
        )
        .group_by(Article.id)
        .order_by(shared.desc(), Article.published_at.desc(), Article.id.desc())
        .limit(RELATED_LIMIT)
    )
    return list(db.session.scalars(statement))
