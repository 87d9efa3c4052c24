"""Conditional GET: articles and feeds answer 304 when nothing the reader sees has changed,
and never when the reader's consent, banner or preferences would change the page."""

from __future__ import annotations

from datetime import UTC, datetime

from article_factory import import_articles

from conftest import choose
from globalupdates.articles.models import Article
from globalupdates.extensions import db

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"


def revalidate(client, path: str, response, **headers: str):
    sent = {"If-None-Match": response.headers["ETag"]}
    sent.update(headers)
    return client.get(path, headers=sent)


def test_an_article_carries_validators_and_answers_304_when_unchanged(client):
    first = client.get(ARTICLE)
    assert first.status_code == 200
    assert first.headers["ETag"].startswith('W/"')
    assert first.headers["Last-Modified"]
    again = revalidate(client, ARTICLE, first)
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]


def test_a_304_carries_no_new_policy_or_body_headers(client):
    """A cache merges a 304's headers into the stored page: a fresh CSP nonce there would
    no longer match the nonces inside the cached body, so none may be sent."""
    first = client.get(ARTICLE)
    again = revalidate(client, ARTICLE, first)
    assert again.status_code == 304
    assert "Content-Security-Policy" not in again.headers
    assert "Content-Length" not in again.headers or again.headers["Content-Length"] == "0"


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


def test_if_modified_since_alone_follows_the_readers_choice_as_well(app, client):
    """HTTP dates count whole seconds, so the story is dated well before the choice."""
    with app.app_context():
        db.session.execute(db.update(Article).values(modified_at=datetime(2026, 11, 19, 14, 5)))
        db.session.commit()
    first = client.get(ARTICLE)
    assert first.headers["Last-Modified"] == "Thu, 19 Nov 2026 14:05:00 GMT"
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    assert client.get(ARTICLE, headers=since).status_code == 304
    choose(client, "reject_all")
    later = client.get(ARTICLE, headers=since)
    assert later.status_code == 200
    assert later.last_modified >= datetime.now(UTC).replace(microsecond=0, second=0)


def test_the_etag_follows_preference_cookies_and_the_allow_once_button(client):
    choose(client, "accept_all")
    plain = client.get(ARTICLE)
    client.set_cookie("gu_text_size", "large")
    assert revalidate(client, ARTICLE, plain).status_code == 200
    client.delete_cookie("gu_text_size")
    assert revalidate(client, ARTICLE, plain).status_code == 304
    once = client.get(ARTICLE, query_string={"embed": "vidmoor:harrowmere-first-cycle"})
    assert once.headers["ETag"] != plain.headers["ETag"]


def test_another_readers_etag_does_not_match(app, client):
    first = client.get(ARTICLE)
    stranger = app.test_client()
    stranger.get("/")
    assert revalidate(stranger, ARTICLE, first).status_code == 200


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
