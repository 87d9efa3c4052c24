"""The site's own optional features answer only readers who granted their category."""

from __future__ import annotations

import pytest

from globalupdates.extensions import db
from globalupdates.features.models import PageTiming, PageView
from globalupdates.features.pageviews import flush_page_views
from tests.support.consent import SAME_ORIGIN, choose
from tests.support.pages import ARTICLE

ENDPOINTS = [
    ("post", "/features/pageview", {"path": ARTICLE}),
    ("post", "/features/timing", {"path": ARTICLE, "ttfb": 5, "domContentLoaded": 9, "load": 20}),
    ("post", "/features/text-size", {"size": "large"}),
    ("get", "/features/house-ad", None),
]


CROSS_SITE = [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}]


def call(client, method, path, body, headers=SAME_ORIGIN):
    """A feature script's request, sent from a page of the site."""
    if method == "get":
        return client.get(path, headers=headers)
    return client.post(path, json=body, headers=headers)


def max_age_of(response, name: str) -> int:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    return int(header.split("Max-Age=")[1].split(";")[0])


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_feature_endpoints_refuse_readers_without_the_grant(client, method, path, body):
    choose(client, "reject_all")
    response = call(client, method, path, body)
    assert response.status_code == 403
    assert "consent" in response.get_json()["error"]
    set_cookies = {h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")}
    assert set_cookies <= {"gu_session"}


def test_page_view_is_counted_and_the_reader_cookie_set_once(app, client):
    choose(client, "save", ("analytics",))
    first = call(client, "post", "/features/pageview", {"path": ARTICLE})
    assert first.get_json() == {"path": ARTICLE, "views": 1}
    assert max_age_of(first, "gu_reader") == 13 * 30 * 86400
    second = call(client, "post", "/features/pageview", {"path": ARTICLE})
    assert second.get_json()["views"] == 2
    assert not any(h.startswith("gu_reader=") for h in second.headers.getlist("Set-Cookie"))
    assert flush_page_views(app) == 2
    with app.app_context():
        readers = db.session.scalars(db.select(PageView.reader)).all()
        assert len(readers) == 2 and len(set(readers)) == 1


@pytest.mark.parametrize(
    "body", [{"path": "https://evil.example/"}, {"path": "/static/css/site.css"}, {"path": 5}, []]
)
def test_page_view_of_something_that_is_not_a_page_is_refused(app, client, body):
    choose(client, "save", ("analytics",))
    response = client.post("/features/pageview", json=body, headers=SAME_ORIGIN)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(PageView.id))) == 0


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS[:3])
def test_beacons_from_another_site_are_refused(app, client, method, path, body, headers):
    choose(client, "accept_all")
    response = call(client, method, path, body, headers=headers)
    assert response.status_code == 403
    assert "another site" in response.get_json()["error"]
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(PageView.id))) == 0
        assert db.session.scalar(db.select(db.func.count(PageTiming.id))) == 0
    assert 'data-text-size="normal"' in client.get(ARTICLE).get_data(as_text=True)


def test_timing_is_stored_and_nonsense_refused(app, client):
    choose(client, "save", ("performance",))
    good = ENDPOINTS[1][2]
    assert call(client, "post", "/features/timing", good).status_code == 201
    bad = call(client, "post", "/features/timing", {**good, "load": -1})
    assert bad.status_code == 400
    with app.app_context():
        [timing] = db.session.scalars(db.select(PageTiming)).all()
        assert (timing.time_to_first_byte, timing.load_event) == (5, 20)


def test_text_size_is_remembered_while_functional_is_granted(client):
    choose(client, "save", ("functional",))
    response = call(client, "post", "/features/text-size", {"size": "large"})
    assert max_age_of(response, "gu_text_size") == 365 * 86400
    assert '<html lang="en" data-text-size="large">' in client.get(ARTICLE).get_data(as_text=True)
    assert call(client, "post", "/features/text-size", {"size": "huge"}).status_code == 400
    choose(client, "reject_all")
    assert 'data-text-size="normal"' in client.get(ARTICLE).get_data(as_text=True)


def test_house_ad_stops_after_its_daily_cap(client):
    choose(client, "save", ("advertisement",))
    shown = [client.get("/features/house-ad") for _ in range(4)]
    assert [r.status_code for r in shown] == [200, 200, 200, 204]
    assert max_age_of(shown[0], "gu_ad_cap") == 86400
    assert shown[0].get_json()["headline"]


@pytest.mark.parametrize(
    "path",
    [
        "/articles/no-such-story",
        "/articles/%2e%2e",
        "/sections/no-such-section",
        "/tags/no-such-tag",
        "/healthz",
        "/feed.atom",
        "/sitemap.xml",
        "/robots.txt",
        "/.well-known/gpc.json",
    ],
)
def test_the_page_view_beacon_counts_only_pages_that_exist(app, client, path):
    choose(client, "accept_all")
    response = client.post("/features/pageview", json={"path": path}, headers=SAME_ORIGIN)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(PageView.id))) == 0


@pytest.mark.parametrize(
    "path", ["/", ARTICLE, "/sections/world", "/tags/energy", "/search", "/cookie-policy"]
)
def test_the_page_view_beacon_counts_every_real_page(client, path):
    choose(client, "accept_all")
    response = client.post("/features/pageview", json={"path": path}, headers=SAME_ORIGIN)
    assert response.status_code == 200 and response.get_json()["views"] == 1
