"""The English, German and French editions: one URL prefix per language, pages in that language
with links that stay in it, a switcher and ``hreflang`` alternates, and a redirect only at the
bare ``/`` for a reader who arrives from outside the site."""

from __future__ import annotations

import json
import re

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from tests.support.html import attribute, one, parse, select
from tests.support.pages import ARTICLE
from tests.support.translations import english_left, translated_sentences

EDITIONS = {"en": "", "de": "/de", "fr": "/fr"}
# Pages every edition has, the same page in each language.
SHARED_PAGES = ("/", "/search", "/consent", "/cookie-policy", "/privacy", "/consent/history")
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
FROM_OUTSIDE = {"Sec-Fetch-Site": "none"}
FROM_INSIDE = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def fresh_app(app_factory) -> Flask:
    """The demo site with the layers production serves from: each page is asked for twice by
    ``page``, so the second answer comes from the kept responses or the page cache."""
    from globalupdates.articles.importer import import_paths
    from tests.support.apps import CONTENT_DIR

    app = app_factory()
    with app.app_context():
        import_paths([CONTENT_DIR])
    return app


def edition_path(lang: str, path: str) -> str:
    return EDITIONS[lang] + path


def page(client, path: str, **headers: str) -> BeautifulSoup:
    """The page as Flask rendered it, checked to be the very page the caches then give."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    again = client.get(path, headers=headers)
    assert (again.status_code, again.data) == (200, response.data), path
    return parse(response.get_data(as_text=True))


@pytest.mark.parametrize("lang", ["de", "fr"])
@pytest.mark.parametrize("path", SHARED_PAGES)
def test_every_shared_page_answers_in_its_edition_language(fresh_app, lang, path):
    response = fresh_app.test_client().get(edition_path(lang, path))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    soup = parse(response.get_data(as_text=True))
    assert attribute(one(soup, "html"), "lang") == lang
    assert english_left(soup, translated_sentences(lang)) == []


@pytest.mark.parametrize("lang", ["de", "fr"])
def test_links_and_forms_of_an_edition_stay_in_it(fresh_app, lang):
    soup = page(fresh_app.test_client(), edition_path(lang, "/"))
    prefix = EDITIONS[lang] + "/"
    hrefs = [attribute(link, "href") or "" for link in select(soup, "a[href]")]
    site_links = [href for href in hrefs if href.startswith("/")]
    switcher = {attribute(a, "href") for a in select(soup, ".editions a")}
    outside = [href for href in site_links if not href.startswith(prefix) and href not in switcher]
    assert site_links and outside == []
    for form in select(soup, "form"):
        assert (attribute(form, "action") or "").startswith(prefix), form


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
@pytest.mark.parametrize("path", ["/", "/cookie-policy", "/nowhere-at-all"])
def test_every_page_says_its_language_in_a_header(app, lang, path):
    client = app.test_client()
    for _ in range(2):  # the second from the page cache or the kept responses
        response = client.get(edition_path(lang, path))
        assert response.headers["Content-Language"] == lang


def test_the_english_edition_lives_at_the_root_and_has_no_prefix(fresh_app):
    client = fresh_app.test_client()
    soup = page(client, "/cookie-policy")
    assert attribute(one(soup, "html"), "lang") == "en"
    assert attribute(one(soup, ".site-name"), "href") == "/"
    assert client.get("/en/cookie-policy").status_code == 404
    assert client.get("/es/").status_code == 404


def test_a_prefix_without_its_slash_leads_to_the_edition_front_page(fresh_app):
    response = fresh_app.test_client().get("/de")
    assert response.status_code in (301, 308)
    assert response.headers["Location"].endswith("/de/")


def test_a_missing_page_under_a_prefix_says_so_in_that_language(fresh_app):
    response = fresh_app.test_client().get("/fr/nowhere-at-all")
    assert response.status_code == 404
    soup = parse(response.get_data(as_text=True))
    assert attribute(one(soup, "html"), "lang") == "fr"
    assert "Introuvable" in soup.get_text()


@pytest.mark.parametrize("path", ["/cookie-policy", "/consent"])
def test_the_switcher_links_the_same_page_in_every_edition(fresh_app, path):
    soup = page(fresh_app.test_client(), "/de" + path)
    links = select(soup, ".editions a")
    assert [(attribute(a, "hreflang"), attribute(a, "href")) for a in links] == [
        ("en", path),
        ("de", "/de" + path),
        ("fr", "/fr" + path),
    ]
    assert [a.get_text() for a in links] == ["English", "Deutsch", "Français"]
    assert [attribute(a, "lang") for a in links] == ["en", "de", "fr"]
    assert [attribute(a, "aria-current") for a in links] == [None, "page", None]


def test_a_page_in_one_language_links_the_other_editions_front_pages(fresh_app):
    soup = page(fresh_app.test_client(), ARTICLE)
    assert [attribute(a, "href") for a in select(soup, ".editions a")] == ["/", "/de/", "/fr/"]
    assert select(soup, 'link[rel="alternate"][hreflang]') == []


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_shared_pages_name_every_edition_in_hreflang_alternates(fresh_app, lang):
    soup = page(fresh_app.test_client(), edition_path(lang, "/cookie-policy"))
    alternates = {
        attribute(link, "hreflang"): attribute(link, "href")
        for link in select(soup, 'link[rel="alternate"][hreflang]')
    }
    origin = "http://localhost"
    assert alternates == {
        "en": f"{origin}/cookie-policy",
        "de": f"{origin}/de/cookie-policy",
        "fr": f"{origin}/fr/cookie-policy",
        "x-default": f"{origin}/cookie-policy",
    }
    assert attribute(one(soup, 'link[rel="canonical"]'), "href") == alternates[lang]


def test_a_later_page_of_a_list_has_no_alternates(fresh_app):
    soup = page(fresh_app.test_client(), "/?page=1")
    assert select(soup, 'link[rel="alternate"][hreflang]') == []


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_the_scripts_texts_are_in_the_page_language(fresh_app, lang):
    soup = page(fresh_app.test_client(), edition_path(lang, ARTICLE if lang == "en" else "/"))
    texts = json.loads(one(soup, "script#script-texts").get_text())
    expected = {"en": "Close", "de": "Schließen", "fr": "Fermer"}[lang]
    assert texts["consent.close"] == expected
    assert texts["housead.url"] == edition_path(lang, "/features/house-ad")
    assert "{count}" in texts["pageviews.one"] and "{ms}" in texts["timing.loaded"]


def test_the_house_ad_comes_in_the_edition_language_and_links_its_policy(app_factory):
    from tests.support.consent import store_choice

    client = app_factory().test_client()
    store_choice(client, {"advertisement"})
    ad = client.get("/fr/features/house-ad", headers={"Accept": "application/json"}).get_json()
    assert ad["href"] == "/fr/cookie-policy"
    assert ad["label"] != "Promotion from Global Updates"


class TestTheFrontPageRedirect:
    def test_a_reader_from_outside_whose_browser_prefers_german_is_sent_to_german(self, app):
        response = app.test_client().get("/", headers={**GERMAN, **FROM_OUTSIDE})
        assert response.status_code == 302
        assert response.headers["Location"] == "/de/"
        assert {"Accept-Language", "Sec-Fetch-Site"} <= set(response.vary)
        assert response.headers["Cache-Control"].startswith("private")
        assert "Set-Cookie" not in response.headers

    @pytest.mark.parametrize(
        "accept_language, location",
        [("fr-CH, fr;q=0.9, en;q=0.8", "/fr/"), ("es, fr;q=0.5, de;q=0.4", "/fr/")],
    )
    def test_the_best_edition_by_quality_wins(self, app, accept_language, location):
        response = app.test_client().get("/", headers={"Accept-Language": accept_language})
        assert (response.status_code, response.headers.get("Location")) == (302, location)

    @pytest.mark.parametrize("accept_language", ["en-GB,en;q=0.9,de;q=0.8", "es, it", "", "*"])
    def test_english_or_nothing_we_have_serves_the_english_front_page(self, app, accept_language):
        response = app.test_client().get("/", headers={"Accept-Language": accept_language})
        assert response.status_code == 200
        assert {"Accept-Language", "Sec-Fetch-Site"} <= set(response.vary)

    def test_a_link_from_inside_the_site_is_never_redirected(self, app):
        response = app.test_client().get("/", headers={**GERMAN, **FROM_INSIDE})
        assert response.status_code == 200
        assert attribute(one(parse(response.get_data(as_text=True)), "html"), "lang") == "en"

    @pytest.mark.parametrize("path", ["/?page=1", "/cookie-policy", ARTICLE, "/de/", "/fr/"])
    def test_only_the_bare_root_is_negotiated(self, app, path):
        response = app.test_client().get(path, headers=GERMAN)
        assert response.status_code == 200
        assert "Accept-Language" not in response.vary

    def test_a_kept_english_front_page_is_not_served_to_a_german_browser(self, app_factory):
        app = app_factory(CONTENT_CHECK_SECONDS=60)
        client = app.test_client()
        for _ in range(2):
            assert client.get("/").status_code == 200
        assert client.get("/", headers=GERMAN).status_code == 302
        assert client.get("/", headers={**GERMAN, **FROM_INSIDE}).status_code == 200


def test_the_page_cache_keeps_each_edition_apart(app):
    client = app.test_client()
    languages = [
        attribute(one(page(client, edition_path(lang, "/consent")), "html"), "lang")
        for lang in ("en", "de", "fr", "en", "de")
    ]
    assert languages == ["en", "de", "fr", "en", "de"]


@pytest.mark.parametrize("lang", ["de", "fr"])
def test_the_cookie_tables_narrow_labels_come_from_the_page_in_its_language(fresh_app, lang):
    from tests.support.translations import catalogue

    soup = page(fresh_app.test_client(), f"/{lang}/cookie-policy")
    cells = select(soup, ".cookie-table tbody td:not([colspan])")
    form = catalogue(lang).get("%(label)s:").string
    expected = {
        form % {"label": catalogue(lang).get(column).string}
        for column in ("Cookie", "Set by", "Kept for", "What it does")
    }
    assert cells and {attribute(cell, "data-label") for cell in cells} == expected


def test_the_stylesheet_writes_no_words_of_its_own():
    """Text a stylesheet generates is in no catalogue, so it would stay English on every page."""
    from globalupdates.config import PROJECT_ROOT

    css = (PROJECT_ROOT / "static" / "css" / "site.css").read_text()
    assert re.findall(r'content:\s*"[^"]*[A-Za-z][^"]*"', css) == []


def edition_values(client, lang: str) -> dict[str, str]:
    """A real value for each argument of an edition's rules, read off its own pages."""
    front = page(client, f"/{lang}/")
    article = attribute(select(front, ".article-list h2 a")[0], "href") or ""
    section = attribute(select(front, ".site-nav a[href*='/sections/']")[0], "href") or ""
    story = page(client, article)
    tag = attribute(select(story, "a[href*='/tags/']")[0], "href") or ""
    return {
        "slug": article.rsplit("/", 1)[1],
        "section_slug": section.rsplit("/", 1)[1],
        "tag": tag.rsplit("/", 1)[1],
    }


@pytest.mark.parametrize("lang", ["de", "fr"])
def test_every_route_of_an_edition_answers_in_its_language(fresh_app, lang):
    """Every GET rule under the edition's prefix, with values from the edition's own pages:
    pages say ``<html lang>`` and hold no English message; feeds say ``xml:lang``."""
    client = fresh_app.test_client()
    values = edition_values(client, lang)
    rules = [
        rule
        for rule in fresh_app.url_map.iter_rules()
        if "lang" in rule.arguments
        and "GET" in (rule.methods or ())
        and rule.endpoint != "features.house_ad"
    ]
    assert len(rules) >= 10
    for rule in rules:
        path = rule.build({**values, "lang": lang})[1]
        response = client.get(path)
        assert response.status_code == 200, path
        if response.mimetype == "text/html":
            soup = parse(response.get_data(as_text=True))
            assert attribute(one(soup, "html"), "lang") == lang, path
            assert english_left(soup, translated_sentences(lang)) == [], path
        else:
            assert f'xml:lang="{lang}"' in response.get_data(as_text=True), path
