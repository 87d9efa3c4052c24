"""Markdown files with a front-matter header become articles; the body is rendered once, here.

The Markdown renderer, the front-matter (YAML) reader and the HTML sanitiser are imported by
the functions that use them: only ``articles import`` and ``flask prepare`` run them, and
gunicorn's serving processes, which import this module for its patterns, never load them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from ..consent import declared_provider
from ..extensions import db
from .embeds import EmbedDirectiveError, insert_markers, replace_directives
from .listing import slugify
from .models import Article, ArticleTag

XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ALLOWED_TAGS = {
    "p", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "a", "em", "strong", "code",
    "pre", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "abbr", "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"scope"}}
REQUIRED_FIELDS = ("headline", "standfirst", "author", "published")
DEFAULT_LANGUAGE = "en"  # an article whose front matter names no ``lang``
HTML_TAG = re.compile(r"<[^>]+>")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
IMAGE_URL = re.compile(r"^(https://[^\s\"'<>]+|/static/[A-Za-z0-9_./-]+)$")


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
    updated_at: datetime | None
    image_url: str | None
    body_html: str
    body_text: str
    word_count: int
    lang: str = DEFAULT_LANGUAGE


def render_body(markdown_text: str) -> str:
    """Markdown to sanitised HTML; embed directives become markers after sanitising."""
    import markdown

    markdown_text, markers = replace_directives(
        markdown_text, lambda key: declared_provider(key) is not None
    )
    rendered = markdown.markdown(
        markdown_text, extensions=["extra", "sane_lists"], output_format="html"
    )
    return insert_markers(sanitise(rendered), markers)


def sanitise(rendered: str) -> str:
    import nh3

    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def parse_article(path: Path, languages: tuple[str, ...] | None = None) -> ArticleData:
    """One file as an article; ``languages`` are the editions its ``lang`` may name (the
    app's ``LANGUAGES`` when not given)."""
    import frontmatter

    if languages is None:
        languages = tuple(current_app.config["LANGUAGES"])
    text = read_text(path, current_app.config["ARTICLE_MAX_BYTES"])
    try:
        post = frontmatter.loads(text)
    except RecursionError as error:
        raise ArticleImportError(f"{path}: front matter is nested too deeply") from error
    except Exception as error:  # the YAML parser raises its own error types
        raise ArticleImportError(f"{path}: front matter is not valid YAML: {error}") from error
    check_shapes(post.metadata, path)
    meta: dict[str, Any] = {
        name: xml_safe(value) if isinstance(value, str) else value
        for name, value in post.metadata.items()
    }
    content = xml_safe(post.content)
    missing = [name for name in REQUIRED_FIELDS if not meta.get(name)]
    if missing:
        raise ArticleImportError(f"{path}: front matter lacks {', '.join(missing)}")
    slug = str(meta.get("slug") or path.stem)
    if not SLUG_PATTERN.match(slug) or len(slug) > 120:
        raise ArticleImportError(f"{path}: slug {slug!r} must be lowercase words joined by hyphens")
    lang = _language(meta.get("lang"), path, languages)
    if not content.strip():
        raise ArticleImportError(f"{path}: the article has no body")
    try:
        body_html = render_body(content)
    except EmbedDirectiveError as error:
        raise ArticleImportError(f"{path}: {error}") from error
    body_text = plain_text(body_html)
    return ArticleData(
        slug=slug,
        headline=str(meta["headline"]).strip()[:200],
        standfirst=str(meta["standfirst"]).strip()[:400],
        author=str(meta["author"]).strip()[:120],
        section=str(meta.get("section", "")).strip()[:60],
        tags=_tags(meta.get("tags"), path),
        published_at=_moment(meta["published"], path, "published"),
        updated_at=_moment(meta["updated"], path, "updated") if meta.get("updated") else None,
        image_url=_image(meta.get("image"), path),
        body_html=body_html,
        body_text=body_text,
        word_count=len(body_text.split()),
        lang=lang,
    )


def xml_safe(text: str) -> str:
    """The text without the characters XML 1.0 forbids (most C0 controls, lone surrogates,
    U+FFFE and U+FFFF): an article is published in Atom feeds and sitemaps, where one such
    character would make the whole document unreadable."""
    return XML_FORBIDDEN.sub("", text)


def plain_text(body_html: str) -> str:
    """The words of the body, for the search index and the reading time."""
    text = html.unescape(HTML_TAG.sub(" ", body_html))
    return " ".join(CONTROL.sub(" ", text).split())


def _image(value: Any, path: Path) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 500 or not IMAGE_URL.match(value):
        raise ArticleImportError(f"{path}: image must be an https:// URL or a /static/ path")
    return value


def _language(value: Any, path: Path, languages: tuple[str, ...]) -> str:
    """The edition an article belongs to: ``lang`` names one of the site's languages."""
    if value is None or value == "":
        lang = DEFAULT_LANGUAGE
    else:
        lang = str(value).strip().lower() if isinstance(value, str) else ""
    if lang not in languages:
        raise ArticleImportError(
            f"{path}: lang {value!r} is not one of the site's languages ({', '.join(languages)})"
        )
    return lang


def _tags(value: Any, path: Path) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ArticleImportError(f"{path}: tags must be a list")
    slugs = (slugify(str(tag))[:60] for tag in value)
    return list(dict.fromkeys(slug for slug in slugs if slug))


def _moment(value: Any, path: Path, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as error:
            raise ArticleImportError(
                f"{path}: {field} {str(value)[:60]!r} is not an ISO 8601 date"
            ) from error
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError as error:
            raise ArticleImportError(
                f"{path}: {field} {str(value)[:60]!r} is out of range once in UTC"
            ) from error
    return moment


def read_text(path: Path, max_bytes: int) -> str:
    """The file's text, refused when it is over ``max_bytes`` (``ARTICLE_MAX_BYTES``: one huge
    article would make every search that finds it slow) or is not UTF-8."""
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise ArticleImportError(f"{path}: cannot read: {error}") from error
    if len(data) > max_bytes:
        raise ArticleImportError(
            f"{path}: the file is over the limit of {max_bytes:,} bytes (ARTICLE_MAX_BYTES)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ArticleImportError(
            f"{path}: line {line} is not UTF-8 (byte 0x{data[error.start]:02x} at offset "
            f"{error.start})"
        ) from error


def check_shapes(metadata: dict[str, Any], path: Path) -> None:
    """No front-matter field holds a list or mapping inside a list or mapping (``tags`` is a
    list of single values): a field nested hundreds deep names itself here instead of being
    turned into text or failing deeper in."""
    for name, value in metadata.items():
        if is_container(value) and any(is_container(item) for item in contents(value)):
            raise ArticleImportError(f"{path}: {name} holds a nested list or mapping")


def is_container(value: Any) -> bool:
    return isinstance(value, (list, dict, set))


def contents(container: Any) -> list[Any]:
    if isinstance(container, dict):
        return [*container.keys(), *container.values()]
    return list(container)


def save_article(data: ArticleData) -> bool:
    """Insert or update by slug; returns True when the article is new.

    ``modified_at`` moves only when something stored changes, so that importing the same
    files again keeps every validator (``ETag``, ``Last-Modified``) and sitemap date.
    """
    article = db.session.scalar(db.select(Article).filter_by(slug=data.slug))
    created = article is None
    if article is None:
        article = Article(slug=data.slug)
        db.session.add(article)
    changed = created
    for field in fields(ArticleData):
        value = getattr(data, field.name)
        if getattr(article, field.name) != value:
            setattr(article, field.name, value)
            changed = True
    changed = sync_tag_rows(article, data.tags) or changed
    if changed:
        article.modified_at = datetime.now(UTC).replace(tzinfo=None)
    return created


def sync_tag_rows(article: Article, tags: list[str]) -> bool:
    """Keep one ArticleTag row per tag; returns True when a row was added or removed."""
    wanted = set(tags)
    kept = [link for link in article.tag_links if link.tag in wanted]
    missing = wanted - {link.tag for link in kept}
    if len(kept) == len(article.tag_links) and not missing:
        return False
    article.tag_links = kept + [ArticleTag(tag=tag) for tag in tags if tag in missing]
    return True


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
