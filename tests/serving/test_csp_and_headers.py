"""A strict Content-Security-Policy bound to consent, its report endpoint, and the other
security headers."""

from __future__ import annotations

import logging
import re

import pytest

from tests.support.consent import (
    OPTIONAL,
    THIRD_PARTY,
    choose,
    operator_registry,
    static_path,
    store_choice,
)
from tests.support.html import EXECUTABLE_SCRIPTS, attribute, select
from tests.support.pages import ARTICLE, HTML_PAGES

ORIGIN = "http://localhost"
FEATURE_FILES = {
    "functional": "features/textsize.js",
    "analytics": "features/pageviews.js",
    "performance": "features/timing.js",
    "advertisement": "features/housead.js",
}


def directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        name, *values = part.split()
        found[name] = values
    return found


def script_url(app, filename: str) -> str:
    """A static script's exact absolute URL, as the policy names it."""
    return ORIGIN + static_path(app, filename)


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_html_response_has_a_strict_policy(app, client, path):
    response = client.get(path)
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "'nonce-" not in policy
    found = directives(policy)
    assert found["default-src"] == ["'none'"]
    # the consent script by its exact URL, and nothing else: no 'self', no nonce, no hash
    assert found["script-src"] == [script_url(app, "js/consent.js")]
    assert found["frame-ancestors"] == ["'none'"]
    assert found["object-src"] == ["'none'"] and found["base-uri"] == ["'none'"]
    assert found["form-action"] == ["'self'"]
    assert found["report-uri"] == ["/csp-report"] and found["report-to"] == ["csp"]
    assert response.headers["Reporting-Endpoints"] == 'csp="/csp-report"'


@pytest.mark.parametrize("granted", [(), ("analytics",), OPTIONAL])
def test_the_policy_is_the_same_for_every_response_in_one_state(app, client, granted):
    """Nothing per response is left in the policy, so a cached page and its policy agree."""
    store_choice(client, granted)
    policies = {client.get(ARTICLE).headers["Content-Security-Policy"] for _ in range(3)}
    other = app.test_client()
    store_choice(other, granted)
    policies.add(other.get(ARTICLE).headers["Content-Security-Policy"])
    assert len(policies) == 1


def test_readers_in_different_states_get_different_policies(app):
    seen = set()
    for granted in [(), ("analytics",), ("functional",), OPTIONAL]:
        client = app.test_client()
        store_choice(client, granted)
        seen.add(client.get("/").headers["Content-Security-Policy"])
    assert len(seen) == 4


@pytest.mark.parametrize("granted", [(), ("analytics",), ("functional", "performance"), OPTIONAL])
def test_each_gated_script_url_is_in_the_policy_only_while_granted(app, client, granted):
    store_choice(client, granted, services=())
    response = client.get(ARTICLE)
    html = response.get_data(as_text=True)
    script_src = directives(response.headers["Content-Security-Policy"])["script-src"]
    expected = [script_url(app, "js/consent.js")] + [
        script_url(app, FEATURE_FILES[key]) for key in OPTIONAL if key in granted
    ]
    assert script_src == expected
    # JSON-LD (type="application/ld+json") is data, not a script; it is not counted here,
    # nor is the necessary consent script, which every page runs.
    consent = static_path(app, "js/consent.js")
    scripts = [tag for tag in select(html, EXECUTABLE_SCRIPTS) if attribute(tag, "src") != consent]
    assert len(scripts) == len(granted)
    for tag in scripts:
        assert attribute(tag, "data-category") in granted
        assert ORIGIN + (attribute(tag, "src") or "no src") in script_src


def test_no_script_tag_carries_a_nonce(app, client):
    for granted in [(), OPTIONAL]:
        store_choice(client, granted)
        for path in HTML_PAGES:
            html = client.get(path).get_data(as_text=True)
            assert "<script" in html
            assert "nonce" not in html, path


def test_after_reject_all_no_gated_script_url_is_in_the_policy(app, client):
    choose(client, "accept_all")
    granted = client.get(ARTICLE).headers["Content-Security-Policy"]
    assert all(script_url(app, name) in granted for name in FEATURE_FILES.values())
    choose(client, "reject_all")
    policy = client.get(ARTICLE).headers["Content-Security-Policy"]
    assert directives(policy)["script-src"] == [script_url(app, "js/consent.js")]
    assert not any(static_path(app, name) in policy for name in FEATURE_FILES.values())


def test_the_policy_names_the_host_the_page_was_served_from(app):
    client = app.test_client()
    response = client.get("/", base_url="https://news.example")
    script_src = directives(response.headers["Content-Security-Policy"])["script-src"]
    assert script_src == ["https://news.example" + static_path(app, "js/consent.js")]


def test_a_third_party_origin_is_allowed_only_while_its_category_is_granted(app_factory, tmp_path):
    app = app_factory(CONSENT_REGISTRY=str(operator_registry(tmp_path, THIRD_PARTY)))
    client = app.test_client()
    before = directives(client.get("/").headers["Content-Security-Policy"])
    assert "https://stats.example.net" not in before["script-src"] + before["connect-src"]
    choose(client, "save", ("analytics",))
    granted = directives(client.get("/").headers["Content-Security-Policy"])
    assert "https://stats.example.net" in granted["script-src"]
    assert "https://stats.example.net" in granted["connect-src"]
    choose(client, "reject_all")
    after = directives(client.get("/").headers["Content-Security-Policy"])
    assert "https://stats.example.net" not in after["script-src"] + after["connect-src"]


def test_non_html_responses_get_a_locked_down_policy(client):
    for path in ("/healthz", "/.well-known/gpc.json", "/static/css/site.css"):
        response = client.get(path)
        response.close()
        assert directives(response.headers["Content-Security-Policy"])["default-src"] == ["'none'"]


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/css/site.css", "/consent"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    response.close()
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert "geolocation=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in headers


def test_hsts_only_over_https(client):
    response = client.get("/", base_url="https://localhost")
    hsts = response.headers["Strict-Transport-Security"]
    assert re.fullmatch(r"max-age=(\d+); includeSubDomains", hsts)
    assert int(hsts.split("=")[1].split(";")[0]) >= 15552000


LEGACY_REPORT = {
    "csp-report": {
        "document-uri": "https://site.example/articles/x",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "blocked-uri": "https://evil.example/x.js",
    }
}
MODERN_REPORT = [
    {
        "type": "csp-violation",
        "body": {"effectiveDirective": "connect-src", "blockedURL": "https://t.example/beacon"},
    }
]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (LEGACY_REPORT, "application/csp-report", "blocked-uri=https://evil.example/x.js"),
        (MODERN_REPORT, "application/reports+json", "blocked-uri=https://t.example/beacon"),
    ],
)
def test_violation_reports_are_logged(client, caplog, body, content_type, expected):
    import json

    caplog.set_level(logging.WARNING)
    response = client.post("/csp-report", data=json.dumps(body), content_type=content_type)
    assert response.status_code == 204
    assert "CSP violation" in caplog.text and expected in caplog.text


def test_a_report_cannot_forge_log_lines(client, caplog):
    caplog.set_level(logging.WARNING)
    body = {"csp-report": {"blocked-uri": "x\nWARNING forged line"}}
    client.post("/csp-report", json=body)
    [record] = [r for r in caplog.records if "CSP violation" in r.getMessage()]
    assert "\n" not in record.getMessage()


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("not json", "application/csp-report", 400),
        ("{}", "application/csp-report", 400),
        ("[1, 2]", "application/reports+json", 400),
        ("{}", "text/plain", 415),
        ('{"csp-report": {"a": "' + "x" * 20000 + '"}}', "application/csp-report", 413),
    ],
)
def test_bad_reports_get_a_clear_4xx(client, data, content_type, status):
    response = client.post("/csp-report", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["error"]


@pytest.mark.parametrize(
    "origin", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}, {}]
)
def test_reports_are_taken_from_anywhere(client, origin):
    """The browser may send a report from anywhere, and a report changes nothing a reader
    owns, so the forgery check does not apply to it."""
    response = client.post("/csp-report", json=LEGACY_REPORT, headers=origin)
    assert response.status_code == 204


def test_reports_are_rate_limited_per_address(app_factory):
    app = app_factory(RATELIMIT_CSP_REPORT_PER_ADDRESS="3 per minute")
    client = app.test_client()
    statuses = [client.post("/csp-report", json=LEGACY_REPORT).status_code for _ in range(5)]
    assert statuses == [204, 204, 204, 429, 429]
