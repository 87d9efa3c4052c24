"""Work the site no longer repeats on every request, and what must still happen."""

from __future__ import annotations

from conftest import choose

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"


def test_a_stored_choice_is_not_re_signed_on_every_page(client):
    """The cookie is written when the choice changes, not again on each later page."""
    response = choose(client, "accept_all")
    assert response.status_code == 303
    assert "gu_session=" in response.headers["Set-Cookie"]
    later = client.get(ARTICLE)
    assert later.status_code == 200
    assert "gu_session=" not in later.headers.get("Set-Cookie", "")


def test_the_article_lookup_still_finds_each_article_and_refuses_others(client):
    assert client.get(ARTICLE).status_code == 200
    assert b"Harrowmere" in client.get(ARTICLE).data
    assert client.get("/articles/no-such-story").status_code == 404


def test_the_front_page_lists_newest_first(client):
    html = client.get("/").get_data(as_text=True)
    positions = [html.find(word) for word in ("rethink", "Kessling", "Harrowmere")]
    assert all(position > 0 for position in positions)
    assert positions == sorted(positions)


def test_the_registry_works_out_its_notice_hash_once(app):
    """Every consent record carries the hash; it was recomputed from scratch per request."""
    registry = app.extensions["consent"].registry
    first = registry.notice_hash
    assert registry.notice_hash is first
    assert registry.optional_keys is registry.optional_keys
    assert len(first) == 64


def test_gated_script_urls_are_built_once_and_follow_the_mount_point(app, client):
    choose(client, "accept_all")
    html = client.get(ARTICLE).get_data(as_text=True)
    assert 'src="/static/features/pageviews.js"' in html
    assert ("", "features/pageviews.js") in app.extensions["static_script_urls"]
    mounted = client.get(ARTICLE, environ_overrides={"SCRIPT_NAME": "/news"})
    assert 'src="/news/static/features/pageviews.js"' in mounted.get_data(as_text=True)
