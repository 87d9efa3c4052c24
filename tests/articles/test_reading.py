"""What a reader sees around the story: dates, reading time, related stories, styles."""

from __future__ import annotations

import re

from globalupdates.config import PROJECT_ROOT
from tests.support.articles import import_articles
from tests.support.html import attributes
from tests.support.pages import HARROWMERE


def related_links(html: str) -> list[str]:
    return attributes(html, 'aside.related a[href^="/articles/"]', "href")


def test_an_article_shows_machine_readable_published_and_updated_dates(client):
    html = client.get(HARROWMERE).get_data(as_text=True)
    assert (
        'Published <time datetime="2026-11-18T08:30:00Z">18 November 2026, 08:30 UTC</time>' in html
    )
    assert (
        'Updated <time datetime="2026-11-19T14:05:00Z">19 November 2026, 14:05 UTC</time>' in html
    )


def test_an_article_never_updated_shows_no_update(client):
    html = client.get("/articles/kessling-morvelle-night-train-returns").get_data(as_text=True)
    assert "Updated" not in html


def test_reading_time_follows_the_length_of_the_story(app, client, tmp_path):
    words = " ".join(["word"] * 1000)
    import_articles(app, tmp_path, ("long", {"body": words}), ("short", {"body": "Brief."}))
    assert "5 min read" in client.get("/articles/long").get_data(as_text=True)
    assert "1 min read" in client.get("/articles/short").get_data(as_text=True)
    assert "5 min read" in client.get("/").get_data(as_text=True)


def test_related_stories_share_tags_and_the_most_shared_come_first(app, client, tmp_path):
    import_articles(
        app,
        tmp_path,
        ("one-shared", {"tags": ("energy",), "published": "2026-12-01T08:00:00Z"}),
        ("two-shared", {"tags": ("energy", "climate"), "published": "2026-01-01T08:00:00Z"}),
        ("unrelated", {"tags": ("sport",)}),
    )
    html = client.get(HARROWMERE).get_data(as_text=True)
    assert related_links(html) == [
        "/articles/two-shared",
        "/articles/one-shared",
        "/articles/kessling-morvelle-night-train-returns",
    ]


def test_a_story_without_shared_tags_lists_no_related_stories(client):
    html = client.get("/articles/newsrooms-rethink-reader-privacy-and-consent")
    assert related_links(html.get_data(as_text=True)) == []


def test_tags_are_normalised_at_import(app, client, tmp_path):
    import_articles(app, tmp_path, ("tagged", {"tags": ("Coastal Towns", "coastal-towns", "  ")}))
    html = client.get("/articles/tagged").get_data(as_text=True)
    assert attributes(html, 'a[href^="/tags/"]', "href") == ["/tags/coastal-towns"]
    assert "/articles/tagged" in client.get("/tags/coastal-towns").get_data(as_text=True)


def test_the_stylesheet_has_a_dark_theme_a_print_layout_and_a_narrow_layout(client):
    css = (PROJECT_ROOT / "static/css/site.css").read_text(encoding="utf-8")
    dark = re.search(r"@media \(prefers-color-scheme:dark\)\{:root\{([^}]*)\}", css)
    assert dark is not None and "--paper:#131313" in dark.group(1)
    print_rules = css.split("@media print{", 1)[1]
    for hidden in (".site-nav", ".consent-banner", ".embed-placeholder form", ".site-footer"):
        assert hidden in print_rules.split("{display:none}", 1)[0]
    assert "@media (max-width:30rem)" in css
    html = client.get("/").get_data(as_text=True)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
