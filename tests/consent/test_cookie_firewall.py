"""The cookie firewall: every route, in every combination of the four optional categories,
sends only cookies that the registry declares and the reader granted."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
from flask import Flask, Response, session

from globalupdates.consent.web.cookie_firewall import expires_cookie
from tests.support.consent import OPTIONAL, SAME_ORIGIN, store_choice
from tests.support.pages import ARTICLE

STATES = [
    frozenset(combination)
    for size in range(len(OPTIONAL) + 1)
    for combination in itertools.combinations(OPTIONAL, size)
]
SAMPLE_ARGUMENTS = {"slug": ARTICLE.rsplit("/", 1)[1], "filename": "css/site.css", "lang": "fr"}
JSON_BODIES: dict[str, Any] = {
    "features.record_page_view": {"path": ARTICLE},
    "features.record_timing": {"path": ARTICLE, "ttfb": 10, "domContentLoaded": 20, "load": 30},
    "features.choose_text_size": {"size": "large"},
    "csp_reports.receive_report": {"csp-report": {"blocked-uri": "inline"}},
}
FIREWALL = "cookie firewall"


def requests_for_every_route(app: Flask) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for every rule of the app, with sample values filled in."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            arguments = {name: SAMPLE_ARGUMENTS.get(name, "sample") for name in rule.arguments}
            url = app.url_map.bind("localhost").build(rule.endpoint, arguments)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, url, rule.endpoint))
    return found


def send(client, method: str, url: str, endpoint: str, state: frozenset[str]):
    if method == "GET":
        return client.get(url)
    client.get("/consent")
    if endpoint == "consent.choose":
        form = {"action": "save", **dict.fromkeys(state, "on")}
        return client.post(url, data=form, headers=SAME_ORIGIN)
    return client.post(url, json=JSON_BODIES.get(endpoint, {}), headers=SAME_ORIGIN)


def refused_cookies(app: Flask, response, state: frozenset[str]) -> list[str]:
    registry = app.extensions["consent"].registry
    granted = state | registry.required_keys
    refused = []
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        found = registry.find_cookie(name)
        if found is None:
            refused.append(f"{name} (undeclared)")
        elif found[0].key not in granted and not expires_cookie(header):
            refused.append(f"{name} ({found[0].key} not granted)")
    return refused


@pytest.mark.parametrize("state", STATES, ids=lambda s: "+".join(sorted(s)) or "nothing")
def test_every_route_sends_only_declared_and_granted_cookies(app_factory, state, caplog):
    app = app_factory(RATELIMIT_ENABLED=False)
    routes = requests_for_every_route(app)
    assert {"consent.choose", "features.record_page_view", "articles.article_page"} <= {
        endpoint for _, _, endpoint in routes
    }
    caplog.set_level(logging.WARNING)
    for method, url, endpoint in routes:
        client = app.test_client()
        store_choice(client, state)
        for name in ("gu_text_size", "gu_reader", "gu_ad_cap"):
            client.set_cookie(name, "1")
        response = send(client, method, url, endpoint, state)
        assert response.status_code < 500, (method, url)
        response.close()
        assert refused_cookies(app, response, state) == [], (method, url)
    assert FIREWALL not in caplog.text, "the site itself tried to set a forbidden cookie"


def test_firewall_strips_undeclared_and_ungranted_cookies_and_logs_them(app_factory, caplog):
    app = app_factory()

    @app.get("/test-rogue")
    def rogue() -> Response:
        session["rogue_visits"] = 1  # so the necessary session cookie is written here too
        response = Response("rogue")
        response.set_cookie("tracker", "1")
        response.set_cookie("gu_reader", "a" * 32)
        response.set_cookie("gu_text_size", "large")
        response.delete_cookie("gu_ad_cap")
        return response

    client = app.test_client()
    store_choice(client, {"functional"})
    caplog.set_level(logging.WARNING)
    response = client.get("/test-rogue")
    names = [header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")]
    # the variant cookie too: the choice was put in the session without one
    assert sorted(names) == ["gu_ad_cap", "gu_session", "gu_text_size", "gu_variant"]
    assert "tracker" in caplog.text and "gu_reader" in caplog.text
    assert "/test-rogue" in caplog.text
    assert "not declared" in caplog.text and "not granted analytics" in caplog.text
    assert "gu_text_size" not in caplog.text


@pytest.mark.parametrize(
    ("header", "expired"),
    [
        ("a=; Max-Age=0; Path=/", True),
        ("a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/", True),
        ("a=1; Max-Age=60", False),
        ("a=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT", False),
        ("a=1; Max-Age=junk", False),
        ("a=1", False),
    ],
)
def test_only_an_expiry_counts_as_clearing(header, expired):
    assert expires_cookie(header) is expired
