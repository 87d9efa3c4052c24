"""Search in each edition's language: its own articles only, found by any inflected form of a
word, on SQLite (Snowball stems in ``article_search_stems``) and on PostgreSQL (the language's
text search configuration) alike. English keeps FTS5's Porter index
(``test_sections_search.py``)."""

from __future__ import annotations

import pytest

from globalupdates.articles.models import Article
from globalupdates.articles.search import (
    SearchHit,
    SearchResults,
    StemMarker,
    search_articles,
    stems,
)
from globalupdates.extensions import db
from tests.support.articles import import_articles

NACHTZUG = "nachtzug-nach-morvelle-ausgebucht"
HALDBRUECK = "haldbrueck-heizt-mit-abwaerme-der-brauerei"
LOVE = "vallee-de-la-love-maraichers-eau-de-pluie"
GARE = "morvelle-la-gare-retrouve-ses-voyageurs"
KESSLING = "kessling-morvelle-night-train-returns"
HARROWMERE = "harrowmere-tidal-lagoon-switches-on"


def search(app, query: str, lang: str) -> SearchResults:
    with app.test_request_context("/"):
        return search_articles(query, lang)


def found(app, query: str, lang: str) -> list[str]:
    return [hit.article.slug for hit in search(app, query, lang).hits]


def hit_of(results: SearchResults, slug: str) -> SearchHit:
    return next(hit for hit in results.hits if hit.article.slug == slug)


def body_words(app, slug: str) -> set[str]:
    with app.app_context():
        article = db.session.scalar(db.select(Article).filter_by(slug=slug))
        assert article is not None
        text = f"{article.headline} {article.standfirst} {article.body_text}"
    return set(text.lower().split())


def test_a_german_word_is_found_in_any_of_its_forms(app):
    """The story says "Nachtzug", "Nachtzuges" and "Nachtzüge", never "Nachtzügen"."""
    assert "nachtzügen" not in body_words(app, NACHTZUG)
    for query in ("Nachtzügen", "nachtzug", "NACHTZÜGE", "Nachtzuges"):
        assert found(app, query, "de") == [NACHTZUG], query


def test_every_word_must_be_found_in_some_form(app):
    assert found(app, "Brauereien Stadtwerken", "de") == [HALDBRUECK]
    assert found(app, "Brauereien Nachtzügen", "de") == []


def test_a_french_word_is_found_in_any_of_its_forms(app):
    """No demo article says "maraîchère"; two say "maraîchers"."""
    assert all("maraîchère" not in body_words(app, slug) for slug in (LOVE, GARE))
    assert found(app, "maraîchère", "fr") == [LOVE, GARE]
    assert found(app, "maraîchère bassins", "fr") == [LOVE]


def test_an_edition_finds_only_its_own_language(app):
    """Stories of all three languages name Kessling and Morvelle."""
    assert set(found(app, "Kessling", "en")) == {KESSLING, HARROWMERE}
    assert set(found(app, "Kessling", "de")) == {NACHTZUG, HALDBRUECK}
    assert found(app, "Kessling", "fr") == [GARE]
    assert set(found(app, "Morvelle", "en")) == {KESSLING, HARROWMERE}
    assert set(found(app, "Morvelle", "de")) == {NACHTZUG}
    assert set(found(app, "Morvelle", "fr")) == {GARE, LOVE}
    assert found(app, "Nachtzug", "en") == []
    assert found(app, "turbines", "de") == []


def test_german_results_mark_the_words_found_in_the_articles_own_spelling(app):
    result = search(app, "nachtzügen", "de")
    assert result.total == 1
    hit = result.hits[0]
    assert str(hit.headline) == (
        "Der neue <mark>Nachtzug</mark> nach Morvelle ist bis Februar fast ausgebucht"
    )
    assert "<mark>Nachtzug</mark>" in str(hit.snippet)
    assert len(str(hit.snippet).split()) < 80  # an excerpt, not the story


def test_highlighting_escapes_the_text_before_marking_it(app, tmp_path):
    import_articles(
        app,
        tmp_path,
        (
            "sly",
            {
                "lang": "de",
                "headline": "'<b>Nachtzüge</b> & Schlafwagen'",
                "body": "Die <script>Nachtzüge</script> fahren.",
            },
        ),
    )
    hit = hit_of(search(app, "Nachtzug", "de"), "sly")
    assert str(hit.headline) == "&lt;b&gt;<mark>Nachtzüge</mark>&lt;/b&gt; &amp; Schlafwagen"
    assert "<script>" not in str(hit.snippet)


def test_a_long_german_story_is_shown_around_its_matches(app, tmp_path):
    filler = " ".join(["Füllwort"] * 200)
    body = f"{filler} Hier steht der gesuchte Güterbahnhof. {filler}"
    import_articles(app, tmp_path, ("long", {"lang": "de", "body": body}))
    snippet = str(hit_of(search(app, "Güterbahnhöfe", "de"), "long").snippet)
    assert "Hier steht der gesuchte <mark>Güterbahnhof</mark>. Füllwort" in snippet
    assert len(snippet.split()) < 80
    assert snippet.count("Füllwort") < 70


def test_a_headline_match_ranks_first(app, tmp_path):
    import_articles(
        app,
        tmp_path,
        ("in-body", {"lang": "de", "body": "Ein Wort über Fähren.", "published": "2026-12-02"}),
        ("in-headline", {"lang": "de", "headline": "Fähren", "published": "2026-12-01"}),
    )
    assert found(app, "Fähre", "de") == ["in-headline", "in-body"]


def test_the_index_follows_imports_language_changes_and_deletions(app, tmp_path):
    import_articles(app, tmp_path, ("fresh", {"lang": "de", "headline": "Steinmetze streiken"}))
    assert found(app, "Steinmetz", "de") == ["fresh"]
    import_articles(app, tmp_path, ("fresh", {"lang": "de", "headline": "Maurer streiken"}))
    assert found(app, "Steinmetz", "de") == []
    assert found(app, "Maurern", "de") == ["fresh"]
    import_articles(app, tmp_path, ("fresh", {"lang": "fr", "headline": "Les maçons en grève"}))
    assert found(app, "Maurer", "de") == []
    assert found(app, "maçon", "fr") == ["fresh"]
    with app.app_context():
        fresh = db.session.scalar(db.select(Article).filter_by(slug="fresh"))
        fresh_id = fresh.id
        db.session.delete(fresh)
        db.session.commit()
        if db.engine.dialect.name == "sqlite":  # no row left for a later article to inherit
            left = db.text("SELECT count(*) FROM article_search_stems WHERE rowid = :id")
            assert db.session.scalar(left, {"id": fresh_id}) == 0
    assert found(app, "maçon", "fr") == []


@pytest.mark.parametrize("query", ['"', "Nachtzug*", "NEAR(a b)", "headline:Zug", "ä & ö | !ü"])
def test_query_syntax_is_never_passed_on(app, query):
    with app.test_request_context("/"):
        try:
            search_articles(query, "de")
        except ValueError as error:  # SearchQueryError: no letters or digits
            assert "no letters or digits" in str(error)


def test_index_and_query_stem_the_same_way():
    assert stems("Nachtzüge, Nachtzuges; NACHTZUG", "de") == ["nachtzug"] * 3
    assert stems("Récoltes récolte recoltes", "fr") == ["recolt"] * 3
    assert stems("Straße Strasse", "de") == ["strass"] * 2


def test_a_snippet_says_where_it_leaves_text_out():
    """How SQLite's results for German and French are cut, like FTS5's for English."""
    marker = StemMarker(frozenset(stems("Güterbahnhöfe", "de")), "de")
    words = [f"Wort{n}" for n in range(100)]
    text = " ".join([*words[:50], "Güterbahnhof.", *words[50:]])
    snippet = marker.snippet(text)
    assert snippet.startswith("… Wort44 ") and snippet.endswith(" …")
    assert "Wort49 \x02Güterbahnhof\x03. Wort50" in snippet
    assert len(snippet.split()) == 28 + 2
    assert marker.snippet("Kurz: der Güterbahnhof.") == "Kurz: der \x02Güterbahnhof\x03."
