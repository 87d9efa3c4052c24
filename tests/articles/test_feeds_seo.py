"""What machines read: Atom feeds, sitemaps, robots.txt, canonical URLs and page metadata."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import feedparser
import pytest
from bs4 import Tag

from tests.support.articles import import_articles
from tests.support.html import attribute, attributes, one, select
from tests.support.pages import HARROWMERE, LANTERNS

ORIGIN = "http://localhost"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
PAGES = [
    "/",
    HARROWMERE,
    "/sections/world",
    "/tags/climate",
    "/search",
    "/search?q=tidal",
    "/consent",
    "/cookie-policy",
]


def head(html: str) -> Tag:
    return one(html, "head")


def meta(html: str, attribute_name: str, name: str) -> str:
    tag = one(head(html), f'meta[{attribute_name}="{name}"]')
    return attribute(tag, "content") or ""


def json_ld(html: str) -> dict:
    """The page's JSON-LD: data, never run, so its tag carries nothing the policy checks."""
    tag = one(html, 'script[type="application/ld+json"]')
    assert tag.attrs == {"type": "application/ld+json"}, tag.attrs
    return json.loads(tag.string or "")


def test_the_site_feed_is_valid_atom_with_every_story_newest_first(client):
    response = client.get("/feed.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = feedparser.parse(response.data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Global Updates: latest stories"
    assert feed.feed.id == f"{ORIGIN}/feed.atom"
    assert {link.rel: link.href for link in feed.feed.links} == {
        "self": f"{ORIGIN}/feed.atom",
        "alternate": f"{ORIGIN}/",
    }
    assert feed.feed.updated == "2026-11-24T10:15:00Z"
    assert [entry.link for entry in feed.entries] == [
        f"{ORIGIN}/articles/newsrooms-rethink-reader-privacy-and-consent",
        f"{ORIGIN}/articles/kessling-morvelle-night-train-returns",
        f"{ORIGIN}{HARROWMERE}",
        f"{ORIGIN}{LANTERNS}",
    ]
    harrowmere = feed.entries[2]
    assert harrowmere.id == f"{ORIGIN}{HARROWMERE}"
    assert harrowmere.author == "Elspeth Corran"
    assert harrowmere.published == "2026-11-18T08:30:00Z"
    assert harrowmere.updated == "2026-11-19T14:05:00Z"
    assert {tag.term for tag in harrowmere.tags} == {"World", "energy", "climate", "coastal-towns"}
    assert "<strong>Harrowmere Tidal Cooperative</strong>" in harrowmere.content[0].value


def test_the_feed_satisfies_the_atom_must_rules(client):
    """RFC 4287 4.1.1 and 4.1.2: the elements a feed and each entry must carry."""
    root = ElementTree.fromstring(client.get("/feed.atom").data)
    atom = "{http://www.w3.org/2005/Atom}"
    assert root.tag == f"{atom}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{atom}{name}") is not None, name
    for entry in root.findall(f"{atom}entry"):
        for name in ("id", "title", "updated", "author", "summary", "content"):
            assert entry.find(f"{atom}{name}") is not None, name
        assert entry.find(f"{atom}link[@rel='alternate']") is not None


def test_each_section_has_its_own_feed(client):
    feed = feedparser.parse(client.get("/sections/europe/feed.atom").data)
    assert feed.bozo == 0
    assert feed.feed.title == "Global Updates: Europe"
    assert [entry.title for entry in feed.entries] == [
        "Night train between Kessling and Morvelle returns after 19 years"
    ]
    assert client.get("/sections/sport/feed.atom").status_code == 404


def test_an_empty_section_feed_is_still_valid(app_factory):
    feed = feedparser.parse(app_factory().test_client().get("/feed.atom").data)
    assert feed.bozo == 0 and feed.entries == []


@pytest.mark.parametrize("path", PAGES)
def test_every_page_announces_the_site_feed(client, path):
    html = client.get(path).get_data(as_text=True)
    feeds = select(head(html), 'link[rel="alternate"][type="application/atom+xml"]')
    site_feeds = [link for link in feeds if attribute(link, "href") == "http://localhost/feed.atom"]
    assert [attribute(link, "title") for link in site_feeds] == ["Global Updates: latest stories"]


def test_section_and_article_pages_announce_their_section_feed(client):
    for path in ("/sections/world", HARROWMERE):
        html = client.get(path).get_data(as_text=True)
        feeds = attributes(head(html), 'link[type="application/atom+xml"]', "href")
        assert "http://localhost/sections/world/feed.atom" in feeds


@pytest.mark.parametrize("path", [p for p in PAGES if "search" not in p])
def test_indexable_pages_have_a_canonical_url_description_and_social_cards(client, path):
    html = client.get(path).get_data(as_text=True)
    canonical = attribute(one(head(html), 'link[rel="canonical"]'), "href")
    assert canonical == ORIGIN + path.split("?")[0]
    assert len(meta(html, "name", "description")) > 40
    assert meta(html, "property", "og:url") == canonical
    assert meta(html, "property", "og:title")
    assert meta(html, "property", "og:description") == meta(html, "name", "description")
    assert meta(html, "name", "twitter:card") == "summary"


def test_the_canonical_origin_comes_from_the_configuration(app_factory):
    app = app_factory(CANONICAL_ORIGIN="https://news.example")
    html = app.test_client().get("/").get_data(as_text=True)
    assert '<link rel="canonical" href="https://news.example/">' in html


def test_an_article_is_described_as_a_news_article(client):
    html = client.get(HARROWMERE).get_data(as_text=True)
    assert meta(html, "property", "og:type") == "article"
    assert meta(html, "property", "article:published_time") == "2026-11-18T08:30:00Z"
    data = json_ld(html)
    assert data["@context"] == "https://schema.org" and data["@type"] == "NewsArticle"
    assert data["headline"] == "Harrowmere switches on its tidal lagoon after a decade of planning"
    assert data["datePublished"] == "2026-11-18T08:30:00Z"
    assert data["dateModified"] == "2026-11-19T14:05:00Z"
    assert data["author"] == [{"@type": "Person", "name": "Elspeth Corran"}]
    assert data["publisher"]["@type"] == "Organization"
    assert data["publisher"]["name"] == "Global Updates"
    assert data["mainEntityOfPage"]["@id"] == f"{ORIGIN}{HARROWMERE}"
    assert data["articleSection"] == "World"
    assert "image" not in data


def test_an_article_with_an_image_shares_it_everywhere(app, client, tmp_path):
    import_articles(app, tmp_path, ("pictured", {"image": "/static/img/lagoon.jpg"}))
    html = client.get("/articles/pictured").get_data(as_text=True)
    assert meta(html, "property", "og:image") == f"{ORIGIN}/static/img/lagoon.jpg"
    assert meta(html, "name", "twitter:card") == "summary_large_image"
    assert json_ld(html)["image"] == [f"{ORIGIN}/static/img/lagoon.jpg"]


def test_json_ld_cannot_be_broken_out_of(app, client, tmp_path):
    import_articles(app, tmp_path, ("sly", {"headline": "'</script><script>alert(1)</script>'"}))
    html = client.get("/articles/sly").get_data(as_text=True)
    data = json_ld(html)
    assert data["headline"] == "</script><script>alert(1)</script>"
    assert "<script>alert(1)" not in html


def test_the_sitemap_lists_the_front_page_sections_and_every_article(client):
    response = client.get("/sitemap.xml")
    assert response.mimetype == "application/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == f"{SITEMAP_NS}urlset"
    urls = {u.findtext(f"{SITEMAP_NS}loc"): u.findtext(f"{SITEMAP_NS}lastmod") for u in root}
    assert urls[f"{ORIGIN}{HARROWMERE}"] == "2026-11-19T14:05:00Z"
    assert f"{ORIGIN}/" in urls and f"{ORIGIN}/sections/analysis" in urls
    # Each edition's front page, cookie policy, privacy notice and sections, and every article
    # (test_article_editions.py names them).
    assert len(urls) == 3 * 3 + (3 + 2 + 2) + 10


def test_a_large_site_gets_a_sitemap_index(app_factory, tmp_path):
    app = app_factory(SITEMAP_URLS=2)
    import_articles(app, tmp_path, *((f"story-{n}", {}) for n in range(5)))
    client = app.test_client()
    index = ElementTree.fromstring(client.get("/sitemap.xml").data)
    assert index.tag == f"{SITEMAP_NS}sitemapindex"
    parts = [s.findtext(f"{SITEMAP_NS}loc") for s in index]
    assert parts == [f"{ORIGIN}/sitemaps/{name}.xml" for name in ("pages", 1, 2, 3)]
    articles = set()
    for part in parts[1:]:
        urlset = ElementTree.fromstring(client.get(part.removeprefix(ORIGIN)).data)
        articles |= {u.findtext(f"{SITEMAP_NS}loc") for u in urlset}
    assert articles == {f"{ORIGIN}/articles/story-{n}" for n in range(5)}
    assert client.get("/sitemaps/4.xml").status_code == 404
    assert client.get("/sitemaps/x.xml").status_code == 404


def test_robots_txt_allows_crawling_and_names_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "User-agent: *"
    assert "Disallow: /" not in lines
    assert f"Sitemap: {ORIGIN}/sitemap.xml" in lines
