"""Pages for machines: Atom feeds (RFC 4287), sitemaps and robots.txt.

A feed is of one edition, in its language. The sitemap is one for the whole site: each
edition's pages, with ``hreflang`` alternates for the pages every edition has (as their heads
name them), and each article once, under its own edition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, tostring

from flask import Blueprint, abort, current_app, make_response, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import func
from werkzeug.wrappers import Response as BaseResponse

from ..extensions import db
from ..i18n import reader_locale
from .embeds import body_for_feed
from .importer import xml_safe
from .listing import all_sections, edition_articles, find_section, section_articles
from .models import Article
from .seo import edition_alternates, external_url, iso
from .seo import site_feed as site_feed_link

bp = Blueprint("feeds", __name__)

ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
XHTML = "http://www.w3.org/1999/xhtml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
FEED_ENTRIES = 20
EPOCH = datetime(2000, 1, 1)
# The pages every edition has that search engines should find; search results are kept out.
EDITION_PAGES = ("articles.front_page", "consent.cookie_policy", "consent.privacy_notice")


@bp.get("/feed.atom")
def site_feed() -> ResponseReturnValue:
    lang = reader_locale()
    articles = list(db.session.scalars(edition_articles(lang).limit(FEED_ENTRIES)))
    feed = site_feed_link()
    return atom_response(feed.title, feed.url, external_url("articles.front_page"), articles, lang)


@bp.get("/sections/<section_slug>/feed.atom")
def section_feed(section_slug: str) -> ResponseReturnValue:
    lang = reader_locale()
    section = find_section(section_slug, lang)
    if section is None:
        abort(404, gettext("There is no section by that name."))
    articles = list(db.session.scalars(section_articles(section).limit(FEED_ENTRIES)))
    return atom_response(
        f"{current_app.config['SITE_NAME']}: {section.name}",
        external_url("feeds.section_feed", section_slug=section.slug),
        external_url("articles.section_page", section_slug=section.slug),
        articles,
        lang,
    )


def atom_response(
    title: str, self_url: str, page_url: str, articles: list[Article], lang: str
) -> BaseResponse:
    updated = max((a.last_changed for a in articles), default=EPOCH)
    feed = Element("feed", {"xmlns": ATOM, XML_LANG: lang})
    SubElement(feed, "id").text = self_url
    SubElement(feed, "title").text = xml_safe(title)
    SubElement(feed, "subtitle").text = gettext(
        "Stories from %(site)s, newest first.", site=current_app.config["SITE_NAME"]
    )
    SubElement(feed, "updated").text = iso(updated)
    SubElement(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    SubElement(feed, "link", rel="alternate", type="text/html", href=page_url)
    author = SubElement(feed, "author")
    SubElement(author, "name").text = current_app.config["SITE_NAME"]
    SubElement(feed, "generator").text = current_app.config["SITE_NAME"]
    for article in articles:
        feed.append(atom_entry(article))
    body = tostring(feed, encoding="utf-8", xml_declaration=True)
    return conditional_xml(body, updated, "application/atom+xml")


def atom_entry(article: Article) -> Element:
    url = external_url("articles.article_page", slug=article.slug)
    entry = Element("entry")
    SubElement(entry, "id").text = url
    SubElement(entry, "title").text = xml_safe(article.headline)
    SubElement(entry, "link", rel="alternate", type="text/html", href=url)
    SubElement(entry, "published").text = iso(article.published_at)
    SubElement(entry, "updated").text = iso(article.last_changed)
    author = SubElement(entry, "author")
    SubElement(author, "name").text = xml_safe(article.author)
    if article.section:
        SubElement(entry, "category", term=xml_safe(article.section))
    for tag in article.tags:
        SubElement(entry, "category", term=tag)
    SubElement(entry, "summary").text = xml_safe(article.standfirst)
    SubElement(entry, "content", type="html").text = xml_safe(body_for_feed(article.body_html))
    return entry


def conditional_xml(body: bytes, last_modified: datetime, mimetype: str) -> BaseResponse:
    response = make_response(body)
    response.mimetype = mimetype
    # Not "public": a reader's session cookie may be renewed on any response.
    response.headers["Cache-Control"] = "private, max-age=300"
    response.add_etag()
    response.last_modified = last_modified.replace(tzinfo=UTC)
    return response.make_conditional(request)


@dataclass(frozen=True)
class SitemapPage:
    loc: str
    lastmod: datetime | None = None
    alternates: tuple[tuple[str, str], ...] = ()


def edition_pages() -> list[SitemapPage]:
    """Each edition's own pages: the ones every edition has, with their alternates in the
    other editions, then its sections."""
    pages = []
    for lang in current_app.config["LANGUAGES"]:
        for endpoint in EDITION_PAGES:
            pages.append(
                SitemapPage(
                    external_url(endpoint, lang=lang),
                    latest_change(lang) if endpoint == "articles.front_page" else None,
                    tuple(edition_alternates(endpoint)),
                )
            )
        pages.extend(
            SitemapPage(external_url("articles.section_page", section_slug=s.slug, lang=lang))
            for s in all_sections(lang)
        )
    return pages


@bp.get("/sitemap.xml")
def sitemap() -> ResponseReturnValue:
    """One sitemap while it fits; past ``SITEMAP_URLS`` URLs, an index of numbered ones."""
    per_file = current_app.config["SITEMAP_URLS"]
    pages = edition_pages()
    articles = db.session.scalar(db.select(func.count(Article.id))) or 0
    if len(pages) + articles <= per_file:
        return urlset_response(0, per_file, pages, include_pages=True)
    files = -(-articles // per_file)
    index = Element("sitemapindex", xmlns=SITEMAP)
    for name in ["pages", *range(1, files + 1)]:
        entry = SubElement(index, "sitemap")
        SubElement(entry, "loc").text = external_url("feeds.sitemap_part", part=name)
    body = tostring(index, encoding="utf-8", xml_declaration=True)
    return conditional_xml(body, latest_change(), "application/xml")


MAX_SITEMAP_DIGITS = 6  # a million sitemaps of 50,000 URLs each is far past any site


@bp.get("/sitemaps/<part>.xml")
def sitemap_part(part: str) -> ResponseReturnValue:
    per_file = current_app.config["SITEMAP_URLS"]
    if part == "pages":
        return urlset_response(0, 0, edition_pages(), include_pages=True)
    if not part.isascii() or not part.isdigit() or len(part) > MAX_SITEMAP_DIGITS or int(part) < 1:
        abort(404, gettext("There is no such sitemap."))
    return urlset_response((int(part) - 1) * per_file, per_file, [], include_pages=False)


def urlset_response(
    offset: int, limit: int, pages: list[SitemapPage], *, include_pages: bool
) -> BaseResponse:
    # The prefix spelt as search engines document it; ElementTree's own would be "html".
    urlset = Element("urlset", {"xmlns": SITEMAP, "xmlns:xhtml": XHTML})
    for page in pages:
        add_url(urlset, page)
    rows = db.session.execute(
        db.select(Article.slug, Article.lang, Article.published_at, Article.updated_at)
        .order_by(Article.id)
        .offset(offset)
        .limit(limit)
    ).all()
    if not include_pages and not rows:
        abort(404, gettext("There is no such sitemap."))
    for slug, lang, published_at, updated_at in rows:
        url = external_url("articles.article_page", slug=slug, lang=lang)
        add_url(urlset, SitemapPage(url, updated_at or published_at))
    body = tostring(urlset, encoding="utf-8", xml_declaration=True)
    return conditional_xml(body, latest_change(), "application/xml")


def add_url(urlset: Element, page: SitemapPage) -> None:
    url = SubElement(urlset, "url")
    SubElement(url, "loc").text = page.loc
    if page.lastmod is not None:
        SubElement(url, "lastmod").text = iso(page.lastmod)
    for hreflang, href in page.alternates:
        SubElement(url, "xhtml:link", rel="alternate", hreflang=hreflang, href=href)


def latest_change(lang: str | None = None) -> datetime:
    """When an article (of the edition in ``lang``, when given) last changed."""
    newest = db.select(func.max(Article.modified_at))
    if lang is not None:
        newest = newest.where(Article.lang == lang)
    latest = db.session.scalar(newest)
    return latest or datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@bp.get("/robots.txt")
def robots() -> ResponseReturnValue:
    lines = [
        "User-agent: *",
        "Allow: /",
        "Disallow: /features/",
        f"Sitemap: {external_url('feeds.sitemap')}",
        "",
    ]
    response = make_response("\n".join(lines))
    response.mimetype = "text/plain"
    return response
