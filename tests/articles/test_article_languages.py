"""Each article belongs to one edition: its front matter's ``lang`` at import, and every list of
an edition (front, sections, tags, related stories) holds only that edition's articles.

The lists are asked for by language here, without a URL; ``test_article_editions.py`` opens
them through the editions' addresses."""

from __future__ import annotations

import pytest
from flask import Flask

from globalupdates.articles.listing import (
    all_sections,
    edition_articles,
    find_section,
    related_articles,
    section_articles,
    slugify,
    tag_articles,
)
from globalupdates.articles.models import Article
from globalupdates.articles.views import render_article
from globalupdates.extensions import db
from tests.support.articles import article_markdown, import_articles
from tests.support.html import attribute, one, parse, select

GERMAN = (
    "nachtzug-nach-morvelle-ausgebucht",
    "haldbrueck-heizt-mit-abwaerme-der-brauerei",
    "laternenboote-kehren-nach-ostervale-zurueck",
)
FRENCH = (
    "morvelle-la-gare-retrouve-ses-voyageurs",
    "vallee-de-la-love-maraichers-eau-de-pluie",
    "ostervale-les-bateaux-lanternes-reviennent",
)
ENGLISH = (
    "newsrooms-rethink-reader-privacy-and-consent",
    "kessling-morvelle-night-train-returns",
    "harrowmere-tidal-lagoon-switches-on",
    "ostervale-lantern-boats-return",
)


def slugs(app: Flask, statement) -> list[str]:
    with app.app_context():
        return [article.slug for article in db.session.scalars(statement)]


def article(slug: str) -> Article:
    found = db.session.scalar(db.select(Article).filter_by(slug=slug))
    assert found is not None, slug
    return found


def test_the_demo_content_has_articles_in_every_language(app):
    with app.app_context():
        languages = dict(db.session.execute(db.select(Article.slug, Article.lang)).all())
    assert {slug for slug, lang in languages.items() if lang == "de"} == set(GERMAN)
    assert {slug for slug, lang in languages.items() if lang == "fr"} == set(FRENCH)
    assert {slug for slug, lang in languages.items() if lang == "en"} == set(ENGLISH)


def test_an_article_without_a_language_is_english(app, tmp_path):
    import_articles(app, tmp_path, ("plain", {}))
    with app.app_context():
        assert article("plain").lang == "en"


@pytest.mark.parametrize("written", ["de", "DE", " fr "])
def test_the_language_is_taken_from_the_front_matter(app, tmp_path, written):
    import_articles(app, tmp_path, ("named", {"lang": f"'{written}'"}))
    with app.app_context():
        assert article("named").lang == written.strip().lower()


@pytest.mark.parametrize("written", ["es", "german", "de-AT", "[de]", "1", "no"])
def test_an_article_in_a_language_the_site_has_no_edition_for_is_refused(
    app, runner, tmp_path, written
):
    (tmp_path / "a-good.md").write_text(article_markdown("a-good"), encoding="utf-8")
    (tmp_path / "b-foreign.md").write_text(
        article_markdown("b-foreign", lang=written), encoding="utf-8"
    )
    result = runner.invoke(args=["articles", "import", str(tmp_path)])
    assert result.exit_code == 1
    assert "b-foreign.md" in result.output
    assert "is not one of the site's languages (en, de, fr)" in result.output
    with app.app_context():  # all or nothing: the good file is not stored either
        assert db.session.scalar(db.select(Article).filter_by(slug="a-good")) is None


def test_the_languages_an_import_accepts_are_the_sites(app_factory, tmp_path):
    app = app_factory(LANGUAGES=("en", "de"))
    (tmp_path / "french.md").write_text(article_markdown("french", lang="fr"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["articles", "import", str(tmp_path)])
    assert result.exit_code == 1
    assert "lang 'fr' is not one of the site's languages (en, de)" in result.output


def test_a_changed_language_moves_the_article_to_the_other_edition(app, tmp_path):
    import_articles(app, tmp_path, ("moving", {"lang": "de"}))
    assert "moving" in slugs(app, edition_articles("de"))
    import_articles(app, tmp_path, ("moving", {"lang": "fr"}))
    assert "moving" not in slugs(app, edition_articles("de"))
    assert "moving" in slugs(app, edition_articles("fr"))


@pytest.mark.parametrize(("lang", "expected"), [("en", ENGLISH), ("de", GERMAN), ("fr", FRENCH)])
def test_each_edition_lists_only_its_own_articles_newest_first(app, lang, expected):
    assert slugs(app, edition_articles(lang)) == list(expected)


def test_each_edition_has_its_own_sections(app):
    with app.app_context():
        assert [(s.name, s.slug) for s in all_sections("en")] == [
            ("Analysis", "analysis"),
            ("Europe", "europe"),
            ("World", "world"),
        ]
        assert [(s.name, s.slug) for s in all_sections("de")] == [
            ("Europa", "europa"),
            ("Wirtschaft", "wirtschaft"),
        ]
        assert [(s.name, s.slug) for s in all_sections("fr")] == [
            ("Économie", "economie"),
            ("Régions", "regions"),
        ]
        assert find_section("europa", "de") is not None
        assert find_section("europa", "en") is None
        assert find_section("europe", "de") is None


def test_a_section_of_the_same_name_in_two_editions_lists_each_editions_own(app, tmp_path):
    import_articles(
        app,
        tmp_path,
        ("sport-en", {"section": "Sport", "published": "2026-03-01T08:00:00Z"}),
        ("sport-de", {"section": "Sport", "lang": "de", "published": "2026-03-02T08:00:00Z"}),
    )
    with app.app_context():
        english, german = find_section("sport", "en"), find_section("sport", "de")
        assert english is not None and german is not None
        assert [a.slug for a in db.session.scalars(section_articles(english))] == ["sport-en"]
        assert [a.slug for a in db.session.scalars(section_articles(german))] == ["sport-de"]
        assert find_section("sport", "fr") is None


def test_a_tag_lists_only_the_editions_stories(app, tmp_path):
    import_articles(
        app,
        tmp_path,
        ("tagged-en", {"tags": ("rail",), "published": "2026-03-01T08:00:00Z"}),
        ("tagged-de", {"tags": ("rail",), "lang": "de", "published": "2026-03-02T08:00:00Z"}),
        ("tagged-fr", {"tags": ("rail",), "lang": "fr", "published": "2026-03-03T08:00:00Z"}),
    )
    for lang in ("en", "de", "fr"):
        assert slugs(app, tag_articles("rail", lang)) == [f"tagged-{lang}"]
    assert slugs(app, tag_articles("klima", "de")) == list(GERMAN[:2])  # not the lanterns
    assert slugs(app, tag_articles("klima", "en")) == []


def test_related_stories_are_in_the_articles_own_language(app, tmp_path):
    import_articles(
        app,
        tmp_path,
        ("rail-en", {"tags": ("rail", "night"), "published": "2026-03-01T08:00:00Z"}),
        ("rail-de", {"tags": ("rail", "night"), "lang": "de"}),
        ("other-de", {"tags": ("rail",), "lang": "de", "published": "2026-02-01T08:00:00Z"}),
    )
    with app.app_context():
        assert [a.slug for a in related_articles(article("rail-de"))] == ["other-de"]
        assert [a.slug for a in related_articles(article("rail-en"))] == []
        german = related_articles(article("nachtzug-nach-morvelle-ausgebucht"))
        assert [a.slug for a in german] == ["haldbrueck-heizt-mit-abwaerme-der-brauerei"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Société", "societe"), ("Straße & Schiene", "strasse-schiene"), ("Œuvres", "oeuvres")],
)
def test_sections_and_tags_in_any_language_have_plain_addresses(app, tmp_path, name, slug):
    assert slugify(name) == slug
    import_articles(app, tmp_path, ("named", {"section": name, "tags": (name,), "lang": "fr"}))
    with app.app_context():
        assert article("named").tags == [slug]
        found = find_section(slug, "fr")
        assert found is not None and found.name == name


def test_an_article_in_another_language_than_the_page_says_so(app):
    """An edition lists its own language only, so the attribute is for a page that shows a
    story of another language: rendered here in the English edition."""
    with app.test_request_context("/"), app.app_context():
        german = article("nachtzug-nach-morvelle-ausgebucht")
        english = article("kessling-morvelle-night-train-returns")
        listing = app.jinja_env.get_template("articles/_list.html").module
        html = str(listing.article_list([german, english]))  # type: ignore[attr-defined]
        page = render_article(german)
    items = select(parse(html), "article")
    assert [attribute(tag, "lang") for tag in select(items[0], "h2, p.standfirst")] == ["de"] * 2
    assert [attribute(tag, "lang") for tag in select(items[1], "[lang]")] == []
    story = one(page, "article.story")
    for selector in ("h1", "p.standfirst", "div.story-body"):
        assert attribute(one(story, selector), "lang") == "de", selector
    assert attribute(one(story, "p.byline"), "lang") is None  # the page's own words
