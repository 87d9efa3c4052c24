"""Articles in the English, German and French editions, through their addresses: each edition
lists, searches and feeds its own language only; an article lives in its own edition and is a
permanent redirect from any other; the sitemap lists every edition with the same ``hreflang``
alternates as the pages' heads."""

from __future__ import annotations

from urllib.parse import urlsplit
from xml.etree import ElementTree

import feedparser
import pytest

from globalupdates.pages import page_exists
from tests.support.articles import import_articles
from tests.support.html import attribute, attributes, one, select, texts
from tests.support.pages import (
    HALDBRUECK,
    HARROWMERE,
    KESSLING,
    LANTERNS,
    LANTERNS_DE,
    LANTERNS_FR,
    LOVE_VALLEY,
    MORVELLE_STATION,
    NACHTZUG,
    NEWSROOMS,
)

ORIGIN = "http://localhost"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
XHTML_LINK = "{http://www.w3.org/1999/xhtml}link"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM = "{http://www.w3.org/2005/Atom}"
PREFIX = {"en": "", "de": "/de", "fr": "/fr"}
EDITION_ARTICLES = {
    "en": [NEWSROOMS, KESSLING, HARROWMERE, LANTERNS],
    "de": [NACHTZUG, HALDBRUECK, LANTERNS_DE],
    "fr": [MORVELLE_STATION, LOVE_VALLEY, LANTERNS_FR],
}


def html_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def listed(html: str) -> list[str]:
    """The stories a page lists, in order (not the navigation's or an article's own links)."""
    return attributes(html, "main .article-list article a[href]", "href")


def slug_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_each_front_page_lists_its_own_editions_stories(client, lang):
    html = html_of(client, f"{PREFIX[lang]}/")
    assert listed(html) == EDITION_ARTICLES[lang]
    assert select(html, "main .article-list [lang]") == []  # all in the page's language


def test_each_edition_names_its_own_sections(client):
    def sections(path: str) -> list[str]:
        nav = one(html_of(client, path), ".site-nav")
        return attributes(nav, "a", "href")

    assert sections("/de/") == ["/de/sections/europa", "/de/sections/wirtschaft", "/de/search"]
    assert sections("/fr/") == ["/fr/sections/economie", "/fr/sections/regions", "/fr/search"]
    assert sections("/") == ["/sections/analysis", "/sections/europe", "/sections/world", "/search"]


def test_a_section_exists_only_in_editions_that_have_it(client):
    assert listed(html_of(client, "/de/sections/europa")) == [NACHTZUG, LANTERNS_DE]
    assert listed(html_of(client, "/fr/sections/economie")) == [MORVELLE_STATION]
    assert listed(html_of(client, "/sections/europe")) == [KESSLING]
    for path in ("/sections/europa", "/de/sections/europe", "/fr/sections/wirtschaft"):
        assert client.get(path).status_code == 404, path


def test_a_tag_page_lists_the_editions_stories_only(app, client, tmp_path):
    import_articles(
        app,
        tmp_path,
        ("rail-en", {"tags": ("rail",)}),
        ("rail-de", {"tags": ("rail",), "lang": "de"}),
    )
    assert listed(html_of(client, "/tags/rail")) == ["/articles/rail-en"]
    assert listed(html_of(client, "/de/tags/rail")) == ["/de/articles/rail-de"]
    assert client.get("/fr/tags/rail").status_code == 404
    assert listed(html_of(client, "/de/tags/klima")) == [NACHTZUG, HALDBRUECK]
    assert client.get("/tags/klima").status_code == 404


@pytest.mark.parametrize(
    ("asked", "own"),
    [
        ("/articles/nachtzug-nach-morvelle-ausgebucht", NACHTZUG),
        ("/fr/articles/nachtzug-nach-morvelle-ausgebucht", NACHTZUG),
        ("/de/articles/morvelle-la-gare-retrouve-ses-voyageurs", MORVELLE_STATION),
        ("/de/articles/harrowmere-tidal-lagoon-switches-on", HARROWMERE),
        ("/fr/articles/harrowmere-tidal-lagoon-switches-on", HARROWMERE),
    ],
)
def test_an_article_asked_for_in_another_edition_moves_permanently_to_its_own(client, asked, own):
    response = client.get(asked)
    assert response.status_code == 301
    assert response.headers["Location"] == own
    assert client.get(own).status_code == 200


def test_an_embed_cannot_be_shown_in_another_editions_copy_of_the_page(client):
    response = client.post(
        "/de/articles/harrowmere-tidal-lagoon-switches-on", data={"embed": "anything"}
    )
    assert response.status_code == 404


def test_an_article_is_a_page_only_in_its_own_edition(app):
    with app.test_request_context("/"):
        assert page_exists(NACHTZUG)
        assert not page_exists("/articles/nachtzug-nach-morvelle-ausgebucht")
        assert not page_exists("/fr/articles/nachtzug-nach-morvelle-ausgebucht")
        assert page_exists(HARROWMERE) and not page_exists(f"/de{HARROWMERE}")
        assert page_exists("/de/sections/europa") and not page_exists("/sections/europa")
        assert page_exists("/de/tags/klima") and not page_exists("/fr/tags/klima")


def test_a_german_article_page_is_german_throughout(client):
    html = html_of(client, NACHTZUG)
    assert attribute(one(html, "html"), "lang") == "de"
    story = one(html, "article.story")
    assert select(story, "[lang]") == []  # the page's language is the story's
    assert texts(story, "h1") == ["Der neue Nachtzug nach Morvelle ist bis Februar fast ausgebucht"]
    assert attributes(story, "p.section a", "href") == ["/de/sections/europa"]
    assert attributes(story, "ul.tags a", "href") == [
        "/de/tags/verkehr",
        "/de/tags/klima",
        "/de/tags/grenzregion",
    ]
    assert attributes(html, "aside.related a[href]", "href") == [HALDBRUECK]
    canonical = attribute(one(one(html, "head"), 'link[rel="canonical"]'), "href")
    assert canonical == ORIGIN + NACHTZUG


def test_the_german_edition_finds_a_german_story_by_a_form_it_does_not_contain(client):
    """The story says "Nachtzug", "Nachtzuges" and "Nachtzüge", never "Nachtzügen"."""
    assert "Nachtzügen" not in html_of(client, NACHTZUG)
    response = client.get("/de/search", query_string={"q": "Nachtzügen"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert attributes(html, "main .search-results h2 a", "href") == [NACHTZUG]
    assert "Der neue <mark>Nachtzug</mark> nach Morvelle" in html
    assert select(html, "main .search-results [lang]") == []


def test_each_edition_searches_its_own_language(client):
    def results(path: str, query: str) -> list[str]:
        html = client.get(path, query_string={"q": query}).get_data(as_text=True)
        return attributes(html, "main .search-results h2 a", "href")

    assert results("/search", "Nachtzug") == []
    assert results("/fr/search", "maraîchère") == [LOVE_VALLEY, MORVELLE_STATION]
    assert results("/de/search", "maraîchers") == []
    assert results("/search", "turbines") == [HARROWMERE]


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_each_editions_feed_is_in_its_language_with_its_stories(client, lang):
    head = one(html_of(client, f"{PREFIX[lang]}/"), "head")
    announced = [
        link
        for link in select(head, 'link[rel="alternate"][type="application/atom+xml"]')
        if (attribute(link, "href") or "").endswith("/feed.atom")
    ]
    assert [attribute(link, "href") for link in announced] == [f"{ORIGIN}{PREFIX[lang]}/feed.atom"]
    response = client.get(f"{PREFIX[lang]}/feed.atom")
    root = ElementTree.fromstring(response.data)
    assert root.get(XML_LANG) == lang
    feed = feedparser.parse(response.data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.feed.title == attribute(announced[0], "title")
    assert feed.feed.id == f"{ORIGIN}{PREFIX[lang]}/feed.atom"
    assert {link.rel: link.href for link in feed.feed.links}["alternate"] == (
        f"{ORIGIN}{PREFIX[lang]}/"
    )
    assert [entry.link for entry in feed.entries] == [
        ORIGIN + path for path in EDITION_ARTICLES[lang]
    ]


def test_a_section_feed_is_of_its_edition(client):
    html = html_of(client, "/de/sections/europa")
    feeds = attributes(one(html, "head"), 'link[type="application/atom+xml"]', "href")
    assert f"{ORIGIN}/de/sections/europa/feed.atom" in feeds
    response = client.get("/de/sections/europa/feed.atom")
    assert ElementTree.fromstring(response.data).get(XML_LANG) == "de"
    assert [entry.link for entry in feedparser.parse(response.data).entries] == [
        ORIGIN + NACHTZUG,
        ORIGIN + LANTERNS_DE,
    ]
    assert client.get("/sections/europa/feed.atom").status_code == 404
    assert client.get("/fr/sections/europe/feed.atom").status_code == 404


def sitemap_urls(client) -> dict[str, set[tuple[str, str]]]:
    """Each URL of the sitemap and its ``hreflang`` alternates."""
    root = ElementTree.fromstring(client.get("/sitemap.xml").data)
    assert root.tag == f"{SITEMAP_NS}urlset"
    return {
        url.findtext(f"{SITEMAP_NS}loc") or "": {
            (link.get("hreflang") or "", link.get("href") or "")
            for link in url.findall(XHTML_LINK)
            if link.get("rel") == "alternate"
        }
        for url in root
    }


def test_the_sitemap_lists_every_editions_pages_and_each_article_once(client):
    urls = sitemap_urls(client)
    expected_pages = {
        f"{ORIGIN}{PREFIX[lang]}{path}"
        for lang in PREFIX
        for path in ("/", "/cookie-policy", "/privacy")
    }
    sections = {
        f"{ORIGIN}{path}"
        for path in (
            "/sections/analysis",
            "/sections/europe",
            "/sections/world",
            "/de/sections/europa",
            "/de/sections/wirtschaft",
            "/fr/sections/economie",
            "/fr/sections/regions",
        )
    }
    articles = {ORIGIN + path for paths in EDITION_ARTICLES.values() for path in paths}
    assert set(urls) == expected_pages | sections | articles
    assert not any("search" in url for url in urls)
    alternates = {
        ("en", f"{ORIGIN}/"),
        ("de", f"{ORIGIN}/de/"),
        ("fr", f"{ORIGIN}/fr/"),
        ("x-default", f"{ORIGIN}/"),
    }
    assert urls[f"{ORIGIN}/de/"] == alternates
    assert all(urls[url] == set() for url in sections | articles)


def test_the_sitemaps_alternates_are_the_ones_each_page_names(client):
    """What the sitemap says of a page agrees with what the page's own head says, so search
    engines are never told two different things."""
    for loc, alternates in sitemap_urls(client).items():
        html = html_of(client, urlsplit(loc).path)
        head = one(html, "head")
        named = {
            (attribute(link, "hreflang") or "", attribute(link, "href") or "")
            for link in select(head, 'link[rel="alternate"][hreflang]')
        }
        assert named == alternates, loc
        assert attribute(one(head, 'link[rel="canonical"]'), "href") == loc
