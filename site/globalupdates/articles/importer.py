"""Markdown files with a front-matter header become articles; the body is rendered once, here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import frontmatter
import markdown
import nh3
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from .models import Article

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ALLOWED_TAGS = {
    "p", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "a", "em", "strong", "code",
    "pre", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "abbr", "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"scope"}}
REQUIRED_FIELDS = ("headline", "standfirst", "author", "published")


class ArticleImportError(ValueError):
    """A file that cannot become an article; the message names the file and the problem."""


@dataclass(frozen=True)
class ArticleData:
    slug: str
    headline: str
    standfirst: str
    author: str
    section: str
    tags: list[str]
    published_at: datetime
    body_html: str


def render_body(markdown_text: str) -> str:
    html = markdown.markdown(
        markdown_text, extensions=["extra", "sane_lists"], output_format="html"
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def parse_article(path: Path) -> ArticleData:
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ArticleImportError(f"{path}: cannot read: {error}") from error
    except Exception as error:  # the YAML parser raises its own error types
        raise ArticleImportError(f"{path}: front matter is not valid YAML: {error}") from error
    meta: dict[str, Any] = dict(post.metadata)
    missing = [name for name in REQUIRED_FIELDS if not meta.get(name)]
    if missing:
        raise ArticleImportError(f"{path}: front matter lacks {', '.join(missing)}")
    slug = str(meta.get("slug") or path.stem)
    if not SLUG_PATTERN.match(slug) or len(slug) > 120:
        raise ArticleImportError(f"{path}: slug {slug!r} must be lowercase words joined by hyphens")
    if not post.content.strip():
        raise ArticleImportError(f"{path}: the article has no body")
    return ArticleData(
        slug=slug,
        headline=str(meta["headline"]).strip()[:200],
        standfirst=str(meta["standfirst"]).strip()[:400],
        author=str(meta["author"]).strip()[:120],
        section=str(meta.get("section", "")).strip()[:60],
        tags=_tags(meta.get("tags"), path),
        published_at=_moment(meta["published"], path),
        body_html=render_body(post.content),
    )


def _tags(value: Any, path: Path) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ArticleImportError(f"{path}: tags must be a list")
    return [str(tag).strip().lower() for tag in value if str(tag).strip()]


def _moment(value: Any, path: Path) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as error:
            raise ArticleImportError(
                f"{path}: published {value!r} is not an ISO 8601 date"
            ) from error
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def save_article(data: ArticleData) -> bool:
    """Insert or update by slug; returns True when the article is new."""
    article = db.session.scalar(db.select(Article).filter_by(slug=data.slug))
    created = article is None
    if article is None:
        article = Article(slug=data.slug)
        db.session.add(article)
    article.headline = data.headline
    article.standfirst = data.standfirst
    article.author = data.author
    article.section = data.section
    article.tags = data.tags
    article.published_at = data.published_at
    article.body_html = data.body_html
    return created


def import_paths(paths: list[Path]) -> tuple[int, int]:
    """Import every Markdown file under the paths in one transaction: all or nothing."""
    files = sorted(markdown_files(paths))
    parsed = [parse_article(path) for path in files]
    try:
        results = [save_article(data) for data in parsed]
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        raise
    created = sum(results)
    return created, len(results) - created


def markdown_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in path.glob("*.md") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise ArticleImportError(f"{path}: no such file or directory")
    return found
