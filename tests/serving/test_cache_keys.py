"""The keys pages are kept under hold every input the page depends on: the method, the host
as Flask reads it (port included), and one reading of the cookies for every layer.

Each test asks as a hostile client would and then as an ordinary reader, on the default test
app, whose kept responses and page cache are on as in production, so a page kept for the first
request and served to the second would show.
"""

from __future__ import annotations

from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.support.consent import choose, gated_categories
from tests.support.html import attributes
from tests.support.pages import ARTICLE


def banner_next(html: str) -> str:
    [value] = attributes(html, "#consent-banner input[name=next]", "value")
    return value


def test_a_head_request_does_not_change_the_page_a_get_receives(app):
    client = app.test_client()
    url = f"{ARTICLE}?from=head"
    for _ in range(6):
        assert client.head(url).status_code == 200
    html = client.get(url).get_data(as_text=True)
    assert banner_next(html) == url


def session_cookie_of(app, action: str) -> str:
    client = app.test_client()
    assert choose(client, action).status_code == 303
    cookie = client.get_cookie("gu_session")
    assert cookie is not None
    return cookie.value


def test_a_header_with_two_session_cookies_is_read_alike_by_every_layer(app):
    """The first value counts everywhere, so the page served for the pair is the page of the
    first, and the second cookie alone still gets its own page."""
    accepted = session_cookie_of(app, "accept_all")
    rejected = session_cookie_of(app, "reject_all")
    client = app.test_client(use_cookies=False)
    both = f"gu_session={accepted}; gu_session={rejected}"
    for _ in range(3):
        html = client.get(ARTICLE, headers={"Cookie": both}).get_data(as_text=True)
        assert gated_categories(html) == {"functional", "analytics", "performance", "advertisement"}
    for _ in range(3):
        alone = client.get(ARTICLE, headers={"Cookie": f"gu_session={rejected}"})
        assert gated_categories(alone.get_data(as_text=True)) == set()


def policy_origins(policy: str) -> set[str]:
    [directive] = [part for part in policy.split("; ") if part.startswith("script-src ")]
    return {source.split("/static/")[0] for source in directive.split()[1:] if "/static/" in source}


def get_without_host(app, path: str, port: str) -> tuple[str, dict[str, str]]:
    """An HTTP/1.0 request with no Host header, as a server bound to ``port`` passes it on."""
    environ = EnvironBuilder(path=path, environ_overrides={"SERVER_PROTOCOL": "HTTP/1.0"})
    built = environ.get_environ()
    del built["HTTP_HOST"]
    built.update({"SERVER_NAME": "localhost", "SERVER_PORT": port})
    _body, status, headers = run_wsgi_app(app, built, buffered=True)
    return status, dict(headers)


def test_a_request_without_a_host_is_kept_under_the_host_it_was_rendered_for(app):
    for _ in range(6):
        status, headers = get_without_host(app, ARTICLE, "8123")
        assert status.startswith("200")
        assert policy_origins(headers["Content-Security-Policy"]) == {"http://localhost:8123"}
    response = app.test_client().get(ARTICLE, headers={"Host": "localhost"})
    assert policy_origins(response.headers["Content-Security-Policy"]) == {"http://localhost"}
