"""What a page tells search engines, social sites and feed readers about itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import current_app, request, url_for
from flask_babel import gettext
from markupsafe import Markup

from ..editions import alternates
from .listing import slugify
from .models import Article

JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


@dataclass(frozen=True)
class Feed:
    title: str
    url: str


@dataclass(frozen=True)
class PageMeta:
    """Per-page metadata rendered by ``seo/head.html``; views pass it as ``page_meta``."""

    title: str
    description: str
    canonical: str | None = None
    og_type: str = "website"
    image: str | None = None
    feed: Feed | None = None
    json_ld: Markup | None = None
    noindex: bool = False
    article: Article | None = None


def default_page_meta(title: str, description: str, indexable: bool) -> PageMeta:
    """For pages whose view passes no metadata: the consent pages, error pages."""
    return PageMeta(
        title=" ".join(title.split()),
        description=" ".join(description.split()),
        canonical=absolute_url(request.path) if indexable else None,
    )


def site_origin() -> str:
    """The configured public origin, or the one the request came to."""
    configured = current_app.config.get("CANONICAL_ORIGIN")
    return (configured or request.host_url).rstrip("/")


def absolute_url(path: str) -> str:
    if path.startswith(("https://", "http://")):
        return path
    return site_origin() + path


def external_url(endpoint: str, **values: Any) -> str:
    return absolute_url(url_for(endpoint, **values))


def edition_alternates(endpoint: str, **values: Any) -> list[tuple[str, str]]:
    """``editions.alternates`` as absolute URLs, for the sitemap."""
    return [(lang, absolute_url(path)) for lang, path in alternates(endpoint, **values)]


def site_feed() -> Feed:
    name = current_app.config["SITE_NAME"]
    title = gettext("%(site)s: latest stories", site=name)
    return Feed(title=title, url=external_url("feeds.site_feed"))


def section_feed(section: str, slug: str) -> Feed:
    name = current_app.config["SITE_NAME"]
    return Feed(
        title=f"{name}: {section}", url=external_url("feeds.section_feed", section_slug=slug)
    )


def json_ld(data: dict[str, Any]) -> Markup:
    """JSON for a ``<script type="application/ld+json">`` that no text can break out of."""
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Markup(encoded.translate(JSON_ESCAPES))


def iso(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def article_meta(article: Article) -> PageMeta:
    canonical = external_url("articles.article_page", slug=article.slug)
    feed = section_feed(article.section, slugify(article.section)) if article.section else None
    return PageMeta(
        title=article.headline,
        description=article.standfirst,
        canonical=canonical,
        og_type="article",
        image=article.image_url,
        feed=feed,
        json_ld=news_article_ld(article, canonical),
        article=article,
    )


def news_article_ld(article: Article, canonical: str) -> Markup:
    site = current_app.config["SITE_NAME"]
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.headline[:110],
        "description": article.standfirst,
        "datePublished": iso(article.published_at),
        "dateModified": iso(article.last_changed),
        "author": [{"@type": "Person", "name": article.author}],
        "publisher": {
            "@type": "Organization",
            "name": site,
            "url": external_url("articles.front_page"),
        },
        "mainEntityOfPage": {"@type": "WebPage", "@id": canonical},
        "url": canonical,
        "wordCount": article.word_count,
        "inLanguage": article.lang,
        "isAccessibleForFree": True,
    }
    if article.section:
        data["articleSection"] = article.section
    if article.tags:
        data["keywords"] = list(article.tags)
    if article.image_url:
        data["image"] = [absolute_url(article.image_url)]
    return json_ld(data)
