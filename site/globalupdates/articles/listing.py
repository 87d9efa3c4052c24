"""Which articles a page lists: sections, tags, related stories."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Select, func
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from .models import Article, ArticleTag

NOT_SLUG = re.compile(r"[^a-z0-9]+")
SECTIONS_TTL_SECONDS = 60.0
RELATED_LIMIT = 3


def slugify(name: str) -> str:
    return NOT_SLUG.sub("-", name.lower()).strip("-")


@dataclass(frozen=True)
class Section:
    name: str
    slug: str


@dataclass
class SectionCache:
    """Sections change only at import, so a worker asks the database at most once a minute."""

    sections: tuple[Section, ...] = ()
    fetched_at: float = field(default=float("-inf"))
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
        cache.fetched_at = float("-inf")
    return version


def newest_first(statement: Select) -> Select:
    return statement.order_by(Article.published_at.desc(), Article.id.desc())


def all_sections(refresh: bool = False) -> tuple[Section, ...]:
    cache: SectionCache = current_app.extensions["articles"].sections
    now = time.monotonic()
    if refresh or now - cache.fetched_at > SECTIONS_TTL_SECONDS:
        try:
            names = list(
                db.session.scalars(
                    db.select(Article.section).where(Article.section != "").distinct()
                )
            )
        except SQLAlchemyError:
            # The navigation is also drawn on the "database unavailable" page.
            db.session.rollback()
            return cache.sections
        cache.sections = tuple(sorted((Section(n, slugify(n)) for n in names), key=_by_name))
        cache.fetched_at = now
    return cache.sections


def _by_name(section: Section) -> str:
    return section.name.lower()


def find_section(slug: str) -> Section | None:
    """A section by its slug; a miss asks the database again, so a new section is found
    as soon as it is imported, not a minute later."""
    for sections in (all_sections(), all_sections(refresh=True)):
        found = next((s for s in sections if s.slug == slug), None)
        if found is not None:
            return found
    return None


def section_articles(section: Section) -> Select:
    return newest_first(db.select(Article).where(Article.section == section.name))


def tag_articles(tag: str) -> Select:
    return newest_first(db.select(Article).join(ArticleTag).where(ArticleTag.tag == tag))


def related_articles(article: Article) -> list[Article]:
    """Other stories sharing the most tags with this one, newest first among equals."""
    if not article.tags:
        return []
    shared = func.count(ArticleTag.tag).label("shared")
    statement = (
        db.select(Article)
        .join(ArticleTag)
        .where(ArticleTag.tag.in_(article.tags), Article.id != article.id)
        .group_by(Article.id)
        .order_by(shared.desc(), Article.published_at.desc(), Article.id.desc())
        .limit(RELATED_LIMIT)
    )
    return list(db.session.scalars(statement))
