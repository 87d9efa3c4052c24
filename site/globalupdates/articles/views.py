from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, bindparam

from ..extensions import db
from ..i18n import reader_locale
from ..pagecache import cached_page
from .embeds import body_for_reader, embed_in
from .importer import SLUG_PATTERN
from .listing import (
    edition_articles,
    find_section,
    related_articles,
    section_articles,
    slugify,
    tag_articles,
)
from .models import Article
from .search import MAX_QUERY_LENGTH, SearchOverBudget, SearchQueryError, search_articles
from .seo import PageMeta, article_meta, external_url, section_feed

bp = Blueprint("articles", __name__)

# Built once: constructing this statement on every request cost as much as running it.
ARTICLE_BY_SLUG = db.select(Article).where(Article.slug == bindparam("slug"))
TAG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG_LENGTH = 120  # what the import accepts, so no stored article is ever out of reach
MAX_PAGE_DIGITS = 6
SEARCH_RETRY_AFTER_SECONDS = 30  # a search stopped after its time budget
EMBED_FIELD = "embed"  # the "Show this once" form's one field


def paginate(statement: Select) -> Pagination:
    """A page of articles from ``?page=N``; a page that does not exist is a 404."""
    raw = request.args.get("page", "1")
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_PAGE_DIGITS:
        abort(404, gettext("There is no such page."))
    return db.paginate(statement, page=int(raw), per_page=current_app.config["ARTICLES_PER_PAGE"])


def listing_meta(title: str, description: str, endpoint: str, page: int, **values: str) -> PageMeta:
    extra = {"page": page} if page > 1 else {}
    return PageMeta(
        title=title,
        description=description,
        canonical=external_url(endpoint, **values, **extra),
    )


@bp.get("/")
@cached_page
def front_page() -> ResponseReturnValue:
    page = paginate(edition_articles(reader_locale()))
    name = current_app.config["SITE_NAME"]
    meta = listing_meta(
        name if page.page == 1 else gettext("%(site)s: page %(page)d", site=name, page=page.page),
        gettext("%(site)s: independent reporting on the world, newest stories first.", site=name),
        "articles.front_page",
        page.page,
    )
    return render_template("articles/front.html", page=page, articles=page.items, page_meta=meta)


@bp.get("/sections/<section_slug>")
@cached_page
def section_page(section_slug: str) -> ResponseReturnValue:
    section = find_section(section_slug, reader_locale())
    if section is None:
        abort(404, gettext("There is no section by that name."))
    page = paginate(section_articles(section))
    name = current_app.config["SITE_NAME"]
    meta = listing_meta(
        section.name,
        gettext(
            "The latest %(section)s stories from %(site)s, newest first.",
            section=section.name,
            site=name,
        ),
        "articles.section_page",
        page.page,
        section_slug=section.slug,
    )
    meta = replace(meta, feed=section_feed(section.name, section.slug))
    return render_template(
        "articles/listing.html",
        page=page,
        heading=section.name,
        kind=gettext("Section"),
        page_meta=meta,
        endpoint_values={"section_slug": section.slug},
    )


@bp.get("/tags/<tag>")
@cached_page
def tag_page(tag: str) -> ResponseReturnValue:
    if len(tag) > 60 or not TAG_PATTERN.match(tag):
        abort(404, gettext("No story carries that tag."))
    page = paginate(tag_articles(tag, reader_locale()))
    if page.total == 0:
        abort(404, gettext("No story carries that tag."))
    meta = listing_meta(
        gettext("Stories tagged %(tag)s", tag=tag),
        gettext(
            "Every %(site)s story tagged %(tag)s, newest first.",
            site=current_app.config["SITE_NAME"],
            tag=tag,
        ),
        "articles.tag_page",
        page.page,
        tag=tag,
    )
    return render_template(
        "articles/listing.html",
        page=page,
        heading=tag,
        kind=gettext("Tag"),
        page_meta=meta,
        endpoint_values={"tag": tag},
    )


def is_possible_slug(slug: str) -> bool:
    """A slug the import could have made; anything else names no article and reaches no query."""
    return len(slug) <= MAX_SLUG_LENGTH and SLUG_PATTERN.match(slug) is not None


def find_article(slug: str) -> Article:
    """The article at ``slug``; a slug the import could never have made is a 404 before any
    query."""
    if not is_possible_slug(slug):
        abort(404)
    article = db.session.scalars(ARTICLE_BY_SLUG, {"slug": slug}).one_or_none()
    if article is None:
        abort(404)
    return article


def render_article(article: Article, allow_once: str | None = None) -> str:
    return render_template(
        "articles/article.html",
        article=article,
        body=body_for_reader(article.body_html, allow_once),
        related=related_articles(article),
        section_slug=slugify(article.section),
        page_meta=article_meta(article),
    )


@bp.get("/articles/<slug>")
@cached_page
def article_page(slug: str) -> ResponseReturnValue:
    """The story as every reader in the same consent state gets it, in its own language's
    edition: asked for in another edition, it is a permanent redirect to its own.

    Nothing in the query string allows an embed: a link from anywhere would otherwise make
    the reader's browser call a third party without the reader doing anything on this site.
    """
    article = find_article(slug)
    if article.lang != reader_locale():
        return redirect(url_for("articles.article_page", slug=slug, lang=article.lang), 301)
    return render_article(article)


@bp.post("/articles/<slug>")
def show_embed_once(slug: str) -> ResponseReturnValue:
    """The story with the one embed whose "Show this once" button the reader pressed.

    The forgery check has already refused a POST sent from another site, so this is the
    reader's own act on this page. The answer stores nothing, sets no cookie and is never
    cached; its policy lets the page frame that one provider. It is neither a consent choice
    nor rate limited: nothing is written.
    """
    article = find_article(slug)
    if article.lang != reader_locale():
        abort(404)  # its page, and so its form, is in its own edition only
    token = request.form.get(EMBED_FIELD, "")
    if embed_in(article.body_html, token) is None:
        abort(400, gettext("That embed is not part of this story, so nothing was loaded."))
    response = make_response(render_article(article, allow_once=token))
    response.headers["Cache-Control"] = "no-store"
    return response


def edition_of(values: dict[str, Any]) -> str:
    """The edition a path's values name: its ``lang`` prefix, else the default edition."""
    return str(values.get("lang") or current_app.config["BABEL_DEFAULT_LOCALE"])


def section_exists(values: dict[str, Any]) -> bool:
    return find_section(str(values.get("section_slug", "")), edition_of(values)) is not None


def tag_exists(values: dict[str, Any]) -> bool:
    tag = str(values.get("tag", ""))
    if len(tag) > 60 or not TAG_PATTERN.match(tag):
        return False
    return db.session.scalar(tag_articles(tag, edition_of(values)).limit(1)) is not None


def article_exists(values: dict[str, Any]) -> bool:
    """An article exists at its own edition's address only; elsewhere it is a redirect."""
    slug = str(values.get("slug", ""))
    if not is_possible_slug(slug):
        return False
    found = db.select(Article.id).where(Article.slug == slug, Article.lang == edition_of(values))
    return db.session.scalar(found) is not None


@bp.get("/search")
@cached_page
def search_page() -> ResponseReturnValue:
    query = request.args.get("q", "")
    meta = PageMeta(
        title=gettext("Search"),
        description=gettext(
            "Search every story published by %(site)s.", site=current_app.config["SITE_NAME"]
        ),
        noindex=True,
    )
    context = {"query": query[:MAX_QUERY_LENGTH], "page_meta": meta, "results": None}
    if not query.strip():
        return render_template("articles/search.html", **context)
    try:
        results = search_articles(query, reader_locale())
    except SearchQueryError as error:
        return render_template("articles/search.html", error=str(error), **context), 400
    except SearchOverBudget:
        too_long = gettext("Search is taking too long just now. Please try again in a moment.")
        page = render_template("articles/search.html", error=too_long, **context)
        return page, 503, {"Retry-After": str(SEARCH_RETRY_AFTER_SECONDS)}
    return render_template("articles/search.html", **{**context, "results": results})


def page_url(endpoint: str, page: int, **values: str) -> str:
    """A listing page's address; page 1 has no ``page`` parameter, so it has one URL."""
    params: dict[str, Any] = dict(values)
    if page > 1:
        params["page"] = page
    return url_for(endpoint, **params)
