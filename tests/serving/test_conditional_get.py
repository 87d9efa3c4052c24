"""Conditional GET: articles and feeds answer 304 when nothing the reader sees has changed,
and never when the reader's consent, banner or preferences would change the page.

A page is the same for every reader in the same state, so its validator is a strong ETag
over its bytes, bound to that state; pages carry no Last-Modified (feeds still do)."""

from __future__ import annotations

import gzip
import re

import pytest

from tests.support.articles import import_articles
from tests.support.consent import choose, store_choice
from tests.support.pages import ARTICLE

OPTIONAL = ("functional", "analytics", "performance", "advertisement")


def revalidate(client, path: str, response, **headers: str):
    sent = {"If-None-Match": response.headers["ETag"]}
    sent.update(headers)
    return client.get(path, headers=sent)


def test_an_article_carries_a_strong_etag_and_answers_304_when_unchanged(client):
    first = client.get(ARTICLE)
    assert first.status_code == 200
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.headers["ETag"])
    assert "Last-Modified" not in first.headers
    again = revalidate(client, ARTICLE, first)
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("granted", [None, (), ("analytics",), OPTIONAL])
def test_a_304_carries_the_same_policy_as_the_page_and_no_body_headers(client, granted):
    """A cache merges a 304's headers into the page it keeps; the policy in them is the one
    the page was served under, since both depend on the reader's state alone."""
    if granted is not None:
        store_choice(client, granted)
    first = client.get(ARTICLE)
    again = revalidate(client, ARTICLE, first)
    assert again.status_code == 304
    for name in ("Content-Security-Policy", "Cache-Control", "Vary", "ETag"):
        assert again.headers[name] == first.headers[name], name
    assert "Content-Length" not in again.headers or again.headers["Content-Length"] == "0"
    assert "Content-Encoding" not in again.headers


def test_the_etag_changes_when_the_reader_chooses(client):
    before = client.get(ARTICLE)
    assert 'id="consent-banner"' in before.get_data(as_text=True)
    choose(client, "accept_all")
    after = revalidate(client, ARTICLE, before)
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    html = after.get_data(as_text=True)
    assert 'id="consent-banner"' not in html and "<iframe" in html


def test_the_etag_changes_between_two_choices(client):
    choose(client, "save", ("analytics",))
    analytics = client.get(ARTICLE)
    choose(client, "save", ("analytics", "functional"))
    both = revalidate(client, ARTICLE, analytics)
    assert both.status_code == 200
    assert "<iframe" in both.get_data(as_text=True)


def test_if_modified_since_alone_never_answers_304_for_a_page(client):
    """Pages have no date to compare with, so only the ETag can revalidate them."""
    first = client.get(ARTICLE)
    since = {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}
    assert client.get(ARTICLE, headers=since).status_code == 200
    assert revalidate(client, ARTICLE, first).status_code == 304


def test_the_etag_follows_preference_cookies_and_the_allow_once_button(client):
    choose(client, "accept_all")
    plain = client.get(ARTICLE)
    client.set_cookie("gu_text_size", "large")
    assert revalidate(client, ARTICLE, plain).status_code == 200
    client.delete_cookie("gu_text_size")
    assert revalidate(client, ARTICLE, plain).status_code == 304
    once = client.post(
        ARTICLE,
        data={"embed": "vidmoor:harrowmere-first-cycle"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert once.status_code == 200 and "ETag" not in once.headers


def test_a_reader_in_another_state_does_not_match(app, client):
    first = client.get(ARTICLE)
    chose = app.test_client()
    choose(chose, "reject_all")
    assert revalidate(chose, ARTICLE, first).status_code == 200
    gpc = app.test_client()
    assert revalidate(gpc, ARTICLE, first, **{"Sec-GPC": "1"}).status_code == 200


def test_readers_in_the_same_state_share_the_page_and_its_etag(app, client):
    choose(client, "save", ("analytics",))
    first = client.get(ARTICLE)
    other = app.test_client()
    choose(other, "save", ("analytics",))
    same = other.get(ARTICLE)
    assert same.headers["ETag"] == first.headers["ETag"]
    assert same.data == first.data
    assert revalidate(other, ARTICLE, first).status_code == 304


def test_the_etag_names_the_page_whatever_its_content_coding(client):
    plain = client.get(ARTICLE)
    zipped = client.get(ARTICLE, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert "Accept-Encoding" in zipped.headers["Vary"]
    again = revalidate(client, ARTICLE, zipped, **{"Accept-Encoding": "gzip"})
    assert again.status_code == 304


@pytest.mark.edits_show_at_once
def test_the_etag_changes_when_the_article_is_edited(app, client, tmp_path):
    import_articles(app, tmp_path, ("edited", {"body": "First version."}))
    first = client.get("/articles/edited")
    import_articles(app, tmp_path, ("edited", {"body": "First version."}))
    assert revalidate(client, "/articles/edited", first).status_code == 304
    import_articles(app, tmp_path, ("edited", {"body": "Second version."}))
    second = revalidate(client, "/articles/edited", first)
    assert second.status_code == 200 and "Second version." in second.get_data(as_text=True)


def test_feeds_answer_304_until_a_story_changes(app, client, tmp_path):
    for path in ("/feed.atom", "/sections/world/feed.atom", "/sitemap.xml"):
        first = client.get(path)
        assert first.headers["ETag"].startswith('"') and first.headers["Last-Modified"]
        assert revalidate(client, path, first).status_code == 304
    first = client.get("/feed.atom")
    since = client.get("/feed.atom", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    import_articles(app, tmp_path, ("newer", {"published": "2026-12-01T08:00:00Z"}))
    changed = revalidate(client, "/feed.atom", first)
    assert changed.status_code == 200 and b"/articles/newer" in changed.data
