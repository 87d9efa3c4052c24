"""Every route parameter that reaches a query is bounded and cleaned: hostile values get a
clear 4xx on SQLite and PostgreSQL alike, never a 500."""

from __future__ import annotations

from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from globalupdates.articles.importer import ArticleImportError
from tests.support.articles import import_articles

HOSTILE = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["a\x00b", "%00", "99999999999999999999", "92233720368547759", "-1", "0"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
ROUTES = (
    "/articles/{}",
    "/sections/{}",
    "/sections/{}/feed.atom",
    "/tags/{}",
    "/sitemaps/{}.xml",
    "/search?q={}",
    "/?page={}",
    "/sections/world?page={}",
)


@pytest.mark.parametrize(
    "path",
    [
        "/sitemaps/99999999999999999999.xml",
        "/sitemaps/92233720368547759.xml",
        "/sitemaps/1%00.xml",
        "/articles/a%00b",
        "/articles/" + "a" * 500,
        "/tags/a%00b",
        "/sections/a%00b",
    ],
)
def test_a_hostile_parameter_is_a_clear_4xx(client, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=HOSTILE)
def test_every_route_parameter_survives_hostile_values(client, value):
    for route in ROUTES:
        path = route.format(quote(value, safe=""))
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code)


def test_a_405_says_which_methods_are_allowed(client):
    for accept in ("text/html", "application/json"):
        response = client.post("/healthz", headers={"Accept": accept})
        assert response.status_code == 405
        assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    response = client.delete("/consent")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


CONTROL_CHARACTERS = "".join(chr(code) for code in (0x01, 0x08, 0x0B, 0x0C, 0x1B, 0x1F))


def test_control_characters_in_a_body_never_reach_a_feed_or_a_sitemap(app, client, tmp_path):
    body = f"A body\x08 with a backspace and an escape \x1b[31m here.{CONTROL_CHARACTERS}"
    import_articles(
        app,
        tmp_path / "hostile",
        ("hostile-story", {"headline": "Hostile bytes", "section": "Energy", "body": body}),
    )
    for path in ("/feed.atom", "/sections/energy/feed.atom", "/sitemap.xml"):
        response = client.get(path)
        assert response.status_code == 200, path
        ElementTree.fromstring(response.data)
    feed = client.get("/feed.atom").get_data(as_text=True)
    assert "with a backspace and an escape [31m here." in feed
    assert not any(character in feed for character in CONTROL_CHARACTERS + "\x1b")


def test_control_characters_in_the_front_matter_are_refused_with_the_file_named(app, tmp_path):
    with pytest.raises(ArticleImportError, match="hostile-headline.md"):
        import_articles(
            app,
            tmp_path / "hostile",
            ("hostile-headline", {"headline": f"A headline{CONTROL_CHARACTERS}"}),
        )
