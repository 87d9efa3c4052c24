"""Sections, tags, the paginated front page and full-text search on whichever database the
``database_uri`` fixture gives (SQLite here; PostgreSQL when the suite runs against it)."""

from __future__ import annotations

import pytest

from globalupdates.articles.models import Article
from globalupdates.extensions import db
from tests.support.articles import import_articles
from tests.support.html import attributes
from tests.support.pages import HARROWMERE, KESSLING


def article_links(html: str) -> list[str]:
    return attributes(html, 'main a[href^="/articles/"]', "href")


def many_articles(app, tmp_path, count: int) -> None:
    import_articles(
        app,
        tmp_path / "many",
        *(
            (
                f"story-{n:02d}",
                {"headline": f"Story {n}", "published": f"2026-02-{n:02d}T08:00:00Z"},
            )
            for n in range(1, count + 1)
        ),
    )


def test_every_page_links_each_section_and_search(client):
    html = client.get("/cookie-policy").get_data(as_text=True)
    assert attributes(html, 'nav[aria-label="Sections"] a', "href") == [
        "/sections/analysis",
        "/sections/europe",
        "/sections/world",
        "/search",
    ]


def test_a_section_page_lists_only_its_stories(client):
    response = client.get("/sections/europe")
    assert response.status_code == 200
    assert article_links(response.get_data(as_text=True)) == [KESSLING]


def test_an_unknown_section_is_a_404(client):
    assert client.get("/sections/sport").status_code == 404


def test_a_tag_page_lists_the_stories_with_that_tag_newest_first(client):
    html = client.get("/tags/climate").get_data(as_text=True)
    assert article_links(html) == [KESSLING, HARROWMERE]


@pytest.mark.parametrize("tag", ["no-such-tag", "Climate", "a%20b", "x" * 61])
def test_a_tag_no_story_carries_is_a_404(client, tag):
    assert client.get(f"/tags/{tag}").status_code == 404


def test_articles_link_their_tags_and_section(client):
    html = client.get(HARROWMERE).get_data(as_text=True)
    assert '<a href="/tags/coastal-towns" rel="tag">coastal-towns</a>' in html
    assert '<a href="/sections/world">World</a>' in html


def test_the_front_page_is_paginated_newest_first(app_factory, tmp_path):
    app = app_factory(ARTICLES_PER_PAGE=4)
    many_articles(app, tmp_path, 10)
    client = app.test_client()
    first = client.get("/").get_data(as_text=True)
    assert article_links(first) == [f"/articles/story-{n:02d}" for n in (10, 9, 8, 7)]
    assert 'rel="next" href="/?page=2"' in first and 'rel="prev"' not in first
    third = client.get("/?page=3").get_data(as_text=True)
    assert article_links(third) == ["/articles/story-02", "/articles/story-01"]
    assert 'rel="prev" href="/?page=2"' in third and 'rel="next"' not in third
    assert '<link rel="canonical" href="http://localhost/?page=3">' in third


@pytest.mark.parametrize("page", ["0", "-1", "4", "abc", "99999999999999999999"])
def test_a_page_that_does_not_exist_is_a_404(app_factory, tmp_path, page):
    app = app_factory(ARTICLES_PER_PAGE=4)
    many_articles(app, tmp_path, 10)
    assert app.test_client().get(f"/?page={page}").status_code == 404


def test_search_finds_words_in_the_body_and_marks_them(client):
    response = client.get("/search", query_string={"q": "turbines"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert article_links(html) == [HARROWMERE]
    assert "<mark>turbines</mark>" in html


def test_search_ranks_a_headline_match_above_a_body_match(client):
    """Harrowmere has "tidal" in its headline; the night-train story only names the town."""
    html = client.get("/search", query_string={"q": "Harrowmere"}).get_data(as_text=True)
    assert article_links(html) == [HARROWMERE, KESSLING]
    assert "<mark>Harrowmere</mark> switches on" in html


def test_search_needs_every_word(client):
    html = client.get("/search", query_string={"q": "couchettes turbines"}).get_data(as_text=True)
    assert article_links(html) == []
    assert "No story holds all of: couchettes, turbines." in html


def test_search_matches_other_forms_of_a_word(client):
    html = client.get("/search", query_string={"q": "turbine"}).get_data(as_text=True)
    assert article_links(html) == [HARROWMERE]


@pytest.mark.edits_show_at_once
def test_search_follows_a_new_import_and_an_update(app, client, tmp_path):
    import_articles(app, tmp_path, ("fresh", {"headline": "Quarrymen strike in Oskeld"}))
    html = client.get("/search", query_string={"q": "quarrymen"}).get_data(as_text=True)
    assert article_links(html) == ["/articles/fresh"]
    import_articles(app, tmp_path, ("fresh", {"headline": "Stonemasons strike in Oskeld"}))
    assert article_links(client.get("/search?q=quarrymen").get_data(as_text=True)) == []
    assert article_links(client.get("/search?q=stonemasons").get_data(as_text=True)) == [
        "/articles/fresh"
    ]


def test_a_deleted_article_leaves_the_index(app, client):
    with app.app_context():
        db.session.delete(
            db.session.scalar(
                db.select(Article).filter_by(slug="harrowmere-tidal-lagoon-switches-on")
            )
        )
        db.session.commit()
    assert article_links(client.get("/search?q=turbines").get_data(as_text=True)) == []


def test_an_empty_search_shows_the_form_and_a_hint(client):
    for url in ("/search", "/search?q=", "/search?q=%20%20"):
        response = client.get(url)
        assert response.status_code == 200
        assert "Type one or more words" in response.get_data(as_text=True)


def test_a_too_long_search_is_refused_clearly(client):
    response = client.get("/search", query_string={"q": "tide " * 60})
    assert response.status_code == 400
    assert "please use at most 200" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'; DROP TABLE article; --",
        "headline:tidal",
        "NEAR(tidal lagoon)",
        "tidal AND OR NOT",
        "tid*",
        "a & b | !c <-> d",
        "(((",
        "\x00\x01",
        "<script>alert(1)</script>",
        "^tidal",
        "{tidal}",
        "💥 ☃",
        "%",
    ],
)
def test_hostile_searches_get_an_answer_and_never_a_500(client, query):
    response = client.get("/search", query_string={"q": query})
    assert response.status_code in (200, 400)
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    if response.status_code == 400:
        assert "no letters or digits" in html


def test_search_results_are_kept_out_of_search_engines(client):
    html = client.get("/search?q=tidal").get_data(as_text=True)
    assert '<meta name="robots" content="noindex">' in html


def test_a_section_imported_after_the_first_request_has_its_page_at_once(app, client, tmp_path):
    assert client.get("/sections/science").status_code == 404
    import_articles(app, tmp_path, ("discovery", {"section": "Science"}))
    assert client.get("/sections/science").status_code == 200
    assert client.get("/sections/science/feed.atom").status_code == 200


def test_the_search_index_survives_every_migration(app):
    """A later migration that rebuilds the article table on SQLite would drop the triggers
    that keep the index current; this names the loss before readers notice it."""
    with app.app_context():
        connection = db.session.connection()
        if connection.dialect.name == "sqlite":
            found = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'article'"
            )
            assert {row[0] for row in found} == {
                "article_search_insert",
                "article_search_update",
                "article_search_delete",
                "article_search_stems_delete",
            }
        else:
            found = connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'article'"
            )
            assert "ix_article_search_vector" in {row[0] for row in found}
