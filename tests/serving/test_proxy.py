"""Forwarded headers count only when the operator says how many proxies set them."""

from __future__ import annotations

from flask import request

from tests.support.consent import SAME_ORIGIN

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def add_echo_route(app):
    @app.get("/_echo-client")
    def echo_client() -> dict[str, object]:
        return {"addr": request.remote_addr, "secure": request.is_secure}


def test_forwarded_headers_are_ignored_by_default(app_factory):
    app = app_factory()
    add_echo_route(app)
    answer = app.test_client().get("/_echo-client", headers=FORWARDED).get_json()
    assert answer == {"addr": "127.0.0.1", "secure": False}


def test_forwarded_headers_are_trusted_behind_a_configured_proxy(app_factory):
    app = app_factory(PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1)
    add_echo_route(app)
    client = app.test_client()
    answer = client.get("/_echo-client", headers=FORWARDED).get_json()
    assert answer == {"addr": "203.0.113.9", "secure": True}
    choice = client.post(
        "/consent", data={"action": "reject_all"}, headers={**FORWARDED, **SAME_ORIGIN}
    )
    assert choice.status_code == 303
    assert "Secure" in choice.headers["Set-Cookie"]


def test_an_origin_is_compared_with_the_host_the_proxy_forwarded(app_factory):
    """Behind a proxy that rewrites Host, a browser's own Origin names the public host."""
    app = app_factory(PROXY_FIX_X_HOST=1, PROXY_FIX_X_PROTO=1)
    client = app.test_client()
    public = {"X-Forwarded-Host": "news.example", "X-Forwarded-Proto": "https"}
    own = client.post(
        "/consent",
        data={"action": "reject_all"},
        headers={**public, "Origin": "https://news.example"},
    )
    assert own.status_code == 303
    backend = client.post(
        "/consent",
        data={"action": "reject_all"},
        headers={**public, "Origin": "http://localhost"},
    )
    assert backend.status_code == 403


def test_only_the_configured_number_of_proxies_is_trusted(app_factory):
    app = app_factory(PROXY_FIX_X_FOR=1)
    add_echo_route(app)
    forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    answer = app.test_client().get("/_echo-client", headers=forged).get_json()
    assert answer["addr"] == "203.0.113.9"
