"""Forgery protection from Fetch Metadata: who may change anything, and what a refusal leaves."""

from __future__ import annotations

import pytest

from globalupdates.articles.importer import import_paths
from globalupdates.extensions import db
from globalupdates.features.models import PageTiming, PageView
from globalupdates.features.pageviews import flush_page_views
from globalupdates.forgery import trusted_origins
from tests.support.apps import CONTENT_DIR
from tests.support.consent import SAME_ORIGIN, choose, records, set_cookie_names, stored_choice
from tests.support.pages import ARTICLE

TRUSTED = "https://partner.example"
REFUSED = {
    "cross-site": {"Sec-Fetch-Site": "cross-site"},
    "same-site": {"Sec-Fetch-Site": "same-site"},
    "unknown fetch site": {"Sec-Fetch-Site": "sideways"},
    "foreign origin": {"Origin": "https://attacker.example"},
    "same host, other port": {"Origin": "http://localhost:8080"},
    "null origin": {"Origin": "null"},
    "cross-site with a foreign origin": {
        "Sec-Fetch-Site": "cross-site",
        "Origin": "https://attacker.example",
    },
    "only a foreign referer": {"Referer": "http://evil.example/"},
    "only a referer on this host over another scheme": {"Referer": "https://localhost/"},
    "only a referer on this host and another port": {"Referer": "http://localhost:8080/a"},
    "only a referer that is not an address": {"Referer": "http://[::1/"},
    "only a referer of another scheme": {"Referer": "android-app://localhost/"},
}
ACCEPTED = {
    "same-origin": {"Sec-Fetch-Site": "same-origin"},
    "typed by the reader": {"Sec-Fetch-Site": "none"},
    "own origin without fetch metadata": {"Origin": "http://localhost"},
    "neither header": {},
    "trusted origin": {"Origin": TRUSTED},
    "trusted origin, cross-site": {"Sec-Fetch-Site": "cross-site", "Origin": TRUSTED},
    "only a referer from the site": {"Referer": "http://localhost/articles/x?page=2"},
    "only a referer from the site, port and case spelt out": {"Referer": "HTTP://LocalHost:80/"},
    "only a referer from a trusted origin": {"Referer": f"{TRUSTED}/partners"},
    "an empty referer": {"Referer": ""},
    "own origin, whatever the referer": {
        "Origin": "http://localhost",
        "Referer": "http://x.example/",
    },
}
# What a browser without Fetch Metadata sends on a form posted from another site.
FOREIGN_REFERER = {"Referer": "http://evil.example/"}


@pytest.fixture
def app(app_factory):
    app = app_factory(TRUSTED_ORIGINS=(TRUSTED,))
    with app.app_context():
        import_paths([CONTENT_DIR])
    return app


@pytest.fixture
def reader(client):
    """A reader who rejected everything, so that a forged Accept All would show."""
    choose(client, "reject_all")
    return client


@pytest.mark.parametrize("headers", REFUSED.values(), ids=REFUSED.keys())
def test_a_cross_origin_choice_is_refused_and_changes_nothing(app, reader, headers):
    before = stored_choice(reader)
    count = len(records(app))
    response = reader.post("/consent", data={"action": "accept_all"}, headers=headers)
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert len(records(app)) == count
    assert stored_choice(reader) == before


@pytest.mark.parametrize("headers", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_same_origin_or_non_browser_choice_is_accepted(app, client, headers):
    response = client.post("/consent", data={"action": "accept_all"}, headers=headers)
    assert response.status_code == 303
    assert "gu_session" in set_cookie_names(response)
    assert [record.action for record in records(app)] == ["accept_all"]


def unsafe_routes(app) -> list[tuple[str, str]]:
    """Every route that takes an unsafe method, with concrete values for its parameters."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("csp_reports."):
            continue
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            values = {name: "de" if name == "lang" else "x" for name in rule.arguments}
            found.append((method, rule.build(values)[1]))
    return found


@pytest.mark.parametrize(
    "cross_site",
    [{"Sec-Fetch-Site": "cross-site"}, FOREIGN_REFERER],
    ids=["fetch metadata", "referer only"],
)
def test_every_unsafe_route_refuses_a_cross_site_request_before_doing_anything(app, cross_site):
    client = app.test_client()
    choose(client, "accept_all")
    count = len(records(app))
    routes = unsafe_routes(app)
    assert ("POST", "/consent") in routes and ("POST", "/features/pageview") in routes
    for method, path in routes:
        response = client.open(
            path,
            method=method,
            json={"path": ARTICLE, "size": "large", "ttfb": 1, "domContentLoaded": 2, "load": 3},
            headers={**cross_site, "Accept": "application/json"},
        )
        assert response.status_code == 403, (method, path)
        explanation = "anderen Website" if path.startswith("/de/") else "another site"
        assert response.is_json and explanation in response.get_json()["error"], path
        assert "Set-Cookie" not in response.headers, (method, path)
    assert len(records(app)) == count
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(PageView.id))) == 0
        assert db.session.scalar(db.select(db.func.count(PageTiming.id))) == 0


def test_the_same_beacon_from_the_site_itself_is_counted(app):
    client = app.test_client()
    choose(client, "accept_all")
    response = client.post("/features/pageview", json={"path": ARTICLE}, headers=SAME_ORIGIN)
    assert response.status_code == 200 and response.get_json()["views"] == 1


@pytest.mark.parametrize("path", ["/consent", "/de/consent", "/fr/consent"])
def test_a_choice_form_posted_from_another_site_by_an_old_browser_is_refused(app, reader, path):
    """A browser that sends neither Origin nor Sec-Fetch-Site still names the page it posted
    from."""
    before = stored_choice(reader)
    count = len(records(app))
    response = reader.post(path, data={"action": "accept_all"}, headers=FOREIGN_REFERER)
    assert response.status_code == 403 and "Set-Cookie" not in response.headers
    assert len(records(app)) == count and stored_choice(reader) == before
    same_site = reader.post(
        path, data={"action": "accept_all"}, headers={"Referer": "http://localhost/"}
    )
    assert same_site.status_code == 303 and len(records(app)) == count + 1


def test_the_erasure_form_posted_from_another_site_by_an_old_browser_erases_nothing(app):
    client = app.test_client()
    choose(client, "accept_all")
    assert client.post("/features/pageview", json={"path": ARTICLE}, headers=SAME_ORIGIN).is_json
    for path in ("/features/reading-data/erase", "/de/features/reading-data/erase"):
        response = client.post(path, headers=FOREIGN_REFERER)
        assert response.status_code == 403 and "Set-Cookie" not in response.headers
    flush_page_views(app)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(PageView.id))) == 1


def test_a_reader_is_told_what_happened_and_given_a_way_back(client):
    response = client.post(
        "/consent",
        data={"action": "accept_all"},
        headers={"Sec-Fetch-Site": "cross-site", "Accept": "text/html"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "another site" in html and 'href="/"' in html


def test_a_refusal_does_not_clear_the_readers_optional_cookies(app, client):
    choose(client, "reject_all")
    client.set_cookie("gu_text_size", "large")
    response = client.post(
        "/consent", data={"action": "save"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403 and "Set-Cookie" not in response.headers


def test_the_csp_report_sink_takes_reports_from_the_browser_whatever_it_says(client):
    response = client.post(
        "/csp-report",
        json={"csp-report": {"blocked-uri": "inline"}},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 204


def test_pages_do_not_vary_on_fetch_metadata(client):
    """Only the bare ``/`` does, where a link from inside the site must not be sent to another
    edition (see test_editions.py)."""
    for path in (ARTICLE, "/consent", "/cookie-policy", "/de/", "/fr/consent"):
        assert "sec-fetch" not in client.get(path).headers.get("Vary", "").lower()


@pytest.mark.parametrize(
    "value",
    ["partner.example", "https://partner.example/path", "ftp://partner.example"],
)
def test_a_trusted_origin_that_is_not_an_origin_stops_the_site(value):
    with pytest.raises(ValueError, match="TRUSTED_ORIGINS"):
        trusted_origins(value)


def test_trusted_origins_come_from_a_comma_separated_setting():
    assert trusted_origins("https://a.example, https://B.example/ ,") == {
        "https://a.example",
        "https://b.example",
    }
