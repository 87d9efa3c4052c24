"""The site under gunicorn behind deploy/nginx.conf as it is deployed (only the operator's three
lines are changed): nginx caches first-visit pages (returning readers' pages, cached by their
variant, are tested in test_nginx_variants.py), lets choices and beacons through, passes the
forwarded headers the app's ProxyFix expects, and serves /static/ itself.

nginx is required here, not optional: ``make test`` installs it, so without it these fail.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from globalupdates.consent.web.csp import NON_HTML_POLICY
from globalupdates.security import STATIC_HEADERS
from tests.support.consent import SAME_ORIGIN
from tests.support.gunicorn_server import running_gunicorn
from tests.support.html import linked_urls
from tests.support.nginx_server import DEPLOYED_CONF, check_config, deployed_nginx, nginx_binary
from tests.support.pages import ARTICLE
from tests.support.proxied_site import (
    MISSING_NGINX,
    PROXY_FIX,
    RAISED_LIMITS,
    STYLESHEET,
    Answer,
    Site,
    digested_name,
    fresh,
    static_root_for_nginx,
)
from tests.support.servers import free_port
from tests.support.slow_clients import slow_header_clients

# Most tests here run nginx in front of gunicorn: the whole module is in the slow suite.
pytestmark = pytest.mark.slow

# What nginx adds to an answer that lacks them: the app's fixed headers and its policy for
# anything that is not a page.
FALLBACK_HEADERS = {**STATIC_HEADERS, "Content-Security-Policy": NON_HTML_POLICY}


def accepted_all(site: Site) -> str:
    answer = site.choose("accept_all", **SAME_ORIGIN)
    assert answer.status == 303, answer.body[:300]
    cookie = answer.session_cookie()
    assert cookie, f"no gu_session in {answer.cookies_set()}"
    return cookie


@pytest.fixture(scope="module")
def site_root() -> Iterator[Path]:
    with static_root_for_nginx() as root:
        yield root


@pytest.fixture(scope="module")
def site(
    migrated_sqlite: Path, site_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """gunicorn (two workers, ProxyFix on) on SQLite, behind the deployed nginx.conf."""
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    folder = tmp_path_factory.mktemp("behind-nginx")
    database = folder / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    settings = {"WEB_CONCURRENCY": "2", **PROXY_FIX, **RAISED_LIMITS}
    with (
        running_gunicorn(f"sqlite:///{database}", folder, settings) as server,
        deployed_nginx(server.port, site_root) as nginx,
    ):
        yield Site(port=nginx.port, app_port=server.port)
        nginx.stop()
        assert not re.search(r"\[(emerg|alert|crit)\]", nginx.error_log()), nginx.error_log()


def test_nginx_is_installed():
    assert nginx_binary() is not None, MISSING_NGINX


def test_deployed_file_passes_nginx_t(site_root):
    assert nginx_binary() is not None, MISSING_NGINX
    status, output = check_config(upstream_port=8000, site_root=site_root)
    assert status == 0, output
    assert "syntax is ok" in output and "test is successful" in output


def test_a_repeated_first_visit_is_served_from_the_cache(site):
    url = fresh(ARTICLE, "first-visit")
    first, second = site.get(url), site.get(url)
    assert first.status == second.status == 200
    assert first.cookies_set() == [] and second.cookies_set() == []
    assert first.header("X-Cache-Status") == "MISS"
    assert second.header("X-Cache-Status") == "HIT"
    assert first.body == second.body
    assert second.header("ETag") == first.header("ETag")
    assert not (first.header("ETag") or "W/").startswith("W/"), "a first visit has a strong ETag"
    cache_control = first.header("Cache-Control") or ""
    assert "public" in cache_control and "s-maxage=" in cache_control, cache_control
    vary = {part.strip().lower() for part in (first.header("Vary") or "").split(",")}
    assert {"cookie", "sec-gpc", "accept-encoding"} <= vary, first.header("Vary")


def test_the_app_sees_the_address_readers_used(site):
    """X-Forwarded-Host and -Port line up with ProxyFix: links name nginx, not gunicorn."""
    page = site.get(fresh(ARTICLE, "canonical")).body.decode()
    assert f'rel="canonical" href="{site.origin}{ARTICLE}"' in page


def test_a_session_without_its_variant_cookie_goes_past_the_cache(site):
    """A reader who chose before the variant cookie existed: the site sets it, nginx stores
    nothing meanwhile."""
    url = fresh(ARTICLE, "with-choice")
    site.get(url)
    assert site.get(url).header("X-Cache-Status") == "HIT"
    cookie = accepted_all(site)
    for _ in range(2):
        own = site.get(url, Cookie=f"gu_session={cookie}")
        assert own.status == 200
        assert own.header("X-Cache-Status") == "BYPASS"
        assert "private" in (own.header("Cache-Control") or "")
        assert "public" not in (own.header("Cache-Control") or "")
        assert own.cookies().get("gu_variant"), own.cookies_set()


def test_a_choice_through_nginx_sets_the_session_and_is_never_cached(site):
    first, second = site.choose("accept_all", **SAME_ORIGIN), site.choose("accept_all")
    for answer in (first, second):
        assert answer.status == 303, answer.body[:300]
        assert (answer.header("Location") or "").endswith(ARTICLE)
        assert answer.session_cookie(), answer.cookies_set()
        assert answer.header("X-Cache-Status") in (None, "BYPASS")
    assert first.session_cookie() != second.session_cookie(), "a POST answer was reused"
    page = site.get(ARTICLE, Cookie=f"gu_session={first.session_cookie()}")
    assert page.status == 200 and page.header("X-Cache-Status") == "BYPASS"


def test_the_forgery_check_sees_the_host_readers_used(site):
    """Without Sec-Fetch-Site the app compares Origin with its Host, which comes from nginx."""
    own_origin = site.choose("reject_all", Origin=site.origin)
    assert own_origin.status == 303, own_origin.body[:300]
    gunicorn_origin = site.choose("reject_all", Origin=f"http://127.0.0.1:{site.app_port}")
    assert gunicorn_origin.status == 403


def test_the_referer_check_sees_the_scheme_host_and_port_readers_used(site):
    """A browser without Fetch Metadata sends only a Referer: the site's own page passes
    through nginx, gunicorn's own address (another port) does not."""
    own_page = site.choose("reject_all", Referer=f"{site.origin}{ARTICLE}")
    assert own_page.status == 303, own_page.body[:300]
    gunicorn_page = site.choose("reject_all", Referer=f"http://127.0.0.1:{site.app_port}/")
    assert gunicorn_page.status == 403 and not gunicorn_page.cookies_set()


def test_a_withdrawal_through_nginx(site):
    cookie = accepted_all(site)
    assert site.count_view(cookie).status == 200
    withdrawal = site.choose("reject_all", cookie, **SAME_ORIGIN)
    assert withdrawal.status == 303, withdrawal.body[:300]
    withdrawn = withdrawal.session_cookie()
    assert withdrawn and withdrawn != cookie
    assert site.count_view(withdrawn).status == 403
    page = site.get(ARTICLE, Cookie=f"gu_session={withdrawn}")
    assert page.status == 200 and page.header("X-Cache-Status") == "BYPASS"


def test_the_page_view_beacon_through_nginx(site):
    cookie = accepted_all(site)
    first, second = site.count_view(cookie), site.count_view(cookie)
    assert first.status == second.status == 200, first.body[:300]
    counts = [json.loads(answer.body)["views"] for answer in (first, second)]
    assert all(count >= 1 for count in counts), counts  # each worker counts what it holds
    assert first.header("X-Cache-Status") in (None, "BYPASS")


def test_sec_gpc_keys_its_own_cache_entry(site):
    url = fresh(ARTICLE, "gpc")
    assert site.get(url).header("X-Cache-Status") == "MISS"
    assert site.get(url, Sec_GPC="1").header("X-Cache-Status") == "MISS"
    assert site.get(url, Sec_GPC="1").header("X-Cache-Status") == "HIT"
    assert site.get(url).header("X-Cache-Status") == "HIT"
    # Only "1" is a signal, for the app and for the cache alike.
    assert site.get(url, Sec_GPC="yes").header("X-Cache-Status") == "HIT"


def test_accept_encoding_is_normalised_in_the_key(site):
    url = fresh(ARTICLE, "encoding")
    assert site.get(url, Accept_Encoding="gzip, deflate, br").header("X-Cache-Status") == "MISS"
    assert site.get(url, Accept_Encoding="br, gzip").header("X-Cache-Status") == "HIT"
    assert site.get(url).header("X-Cache-Status") == "MISS"
    assert site.get(url, Accept_Encoding="identity").header("X-Cache-Status") == "HIT"


def test_nginx_serves_static_files_itself(site, site_root):
    static = site_root / "static"
    digested = digested_name(static, STYLESHEET)
    for name, cache_control in (
        (digested, "public, max-age=31536000, immutable"),
        (STYLESHEET, "no-cache"),
    ):
        answer = site.get(f"/static/{name}")
        assert answer.status == 200
        assert answer.body == (static / name).read_bytes()
        assert answer.header("X-Cache-Status") is None, "the request reached the app"
        assert answer.header("Content-Type") == "text/css"
        assert answer.header("Cache-Control") == cache_control
        assert_fallback_headers(answer)
    packed = site.get(f"/static/{digested}", Accept_Encoding="gzip")
    assert packed.header("Content-Encoding") == "gzip"
    assert gzip.decompress(packed.body) == (static / digested).read_bytes()


def test_a_static_name_missing_on_disk_goes_to_the_app(site):
    answer = site.get("/static/css/no-such-file.css")
    assert answer.status == 404
    assert answer.header("X-Cache-Status") is not None


def test_the_assets_a_page_links_come_from_nginx_for_good(site):
    """The content-named stylesheet and scripts in a real page are on disk for nginx."""
    page = site.get(fresh(ARTICLE, "assets")).body.decode()
    linked = [url for url in linked_urls(page) if re.fullmatch(r"/static/.+\.(css|js)", url)]
    assert linked, "the page links no stylesheet or script under /static/"
    for path in linked:
        answer = site.get(path, Accept_Encoding="gzip")
        assert answer.status == 200, path
        assert answer.header("X-Cache-Status") is None, f"{path} reached the app"
        assert answer.header("Cache-Control") == "public, max-age=31536000, immutable", path
        assert answer.header("Content-Encoding") == "gzip", path


def assert_fallback_headers(answer: Answer) -> None:
    for name, value in FALLBACK_HEADERS.items():
        assert answer.every(name) == [value], (name, answer.status, dict(answer.headers))


def forwarded_as_nginx_does(site: Site) -> dict[str, str]:
    """The headers nginx adds, so that gunicorn asked directly answers as it does nginx."""
    return {
        "Host": "127.0.0.1",
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "127.0.0.1",
        "X-Forwarded-Port": str(site.port),
    }


def from_gunicorn(site: Site, path: str, headers: dict[str, str]) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", site.app_port, timeout=15)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def test_a_page_keeps_the_apps_own_headers_alone_fresh_or_cached(site):
    """A page's policy is the reader's own; nginx neither adds a second one nor changes it,
    also when the page comes from its cache or is revalidated there."""
    url = fresh(ARTICLE, "own-policy")
    direct = from_gunicorn(site, url, forwarded_as_nginx_does(site))
    policy = direct.every("Content-Security-Policy")
    assert (
        len(policy) == 1 and "frame-ancestors 'none'" in policy[0] and policy != [NON_HTML_POLICY]
    )
    first, second = site.get(url), site.get(url)
    assert (first.header("X-Cache-Status"), second.header("X-Cache-Status")) == ("MISS", "HIT")
    revalidated = site.get(url, If_None_Match=second.header("ETag") or "")
    assert revalidated.status == 304
    for answer in (first, second, revalidated):
        assert answer.every("Content-Security-Policy") == policy, answer.header("X-Cache-Status")
        for name, value in STATIC_HEADERS.items():
            assert answer.every(name) == [value], (name, answer.header("X-Cache-Status"))


def test_a_readers_own_page_keeps_its_policy_alone(site):
    cookie = accepted_all(site)
    page = site.get(ARTICLE, Cookie=f"gu_session={cookie}")
    assert page.status == 200 and page.header("X-Cache-Status") == "BYPASS"
    (policy,) = page.every("Content-Security-Policy")
    assert "frame-src https://player.vidmoor.example" in policy


def test_nginxs_own_errors_carry_the_fallback_headers(site):
    oversize_header = site.get("/", X_Padding="a" * 9000)
    assert oversize_header.status == 400
    oversize_body = site.request(
        "POST",
        "/consent",
        "action=save&" + "a" * 100_000,
        {"Content-Type": "application/x-www-form-urlencoded", **SAME_ORIGIN},
    )
    assert oversize_body.status == 413
    for answer in (oversize_header, oversize_body):
        assert_fallback_headers(answer)


def test_gunicorns_own_error_through_nginx_has_each_header_once(site):
    """A 5,000-character URL is within nginx's limit and over gunicorn's."""
    answer = site.get("/" + "a" * 5000)
    assert answer.status == 414
    assert answer.body == b"The address in this request is too long.\n", "nginx answered"
    assert_fallback_headers(answer)


class Upstream(BaseHTTPRequestHandler):
    """Stands in for an upstream that sends some headers of its own, or none."""

    OWN = {
        "Content-Security-Policy": "default-src 'self'",
        "X-Frame-Options": "SAMEORIGIN",
        "X-Content-Type-Options": "nosniff",
    }

    def do_GET(self) -> None:
        body = b"upstream\n"
        self.send_response(400 if self.path == "/bare" else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/own":
            for name, value in self.OWN.items():
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in_upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_nginx_adds_only_the_headers_an_upstream_answer_lacks(stand_in_upstream, site_root):
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    with deployed_nginx(stand_in_upstream, site_root) as nginx:
        site = Site(port=nginx.port, app_port=stand_in_upstream)
        bare, own = site.get("/bare"), site.get("/own")
    assert bare.status == 400
    assert_fallback_headers(bare)
    assert own.status == 200
    for name, value in FALLBACK_HEADERS.items():
        assert own.every(name) == [Upstream.OWN.get(name, value)], name


def test_nginxs_answer_while_gunicorn_is_down_carries_the_fallback_headers(site_root):
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    with deployed_nginx(free_port(), site_root) as nginx:
        answer = Site(port=nginx.port, app_port=0).get("/")
    assert answer.status == 502
    assert_fallback_headers(answer)


def test_the_bare_root_is_cached_apart_for_each_language_preference(site):
    english = {"Accept_Language": "en-GB,en;q=0.8", "Sec_Fetch_Site": "none"}
    german = {"Accept_Language": "de-DE,de;q=0.9,en;q=0.5", "Sec_Fetch_Site": "none"}
    site.get("/", **english)
    assert site.get("/", **english).header("X-Cache-Status") == "HIT"
    for _ in range(2):
        redirect = site.get("/", **german)
        assert redirect.status == 302, redirect.status
        assert (redirect.header("Location") or "").endswith("/de/")
        assert redirect.header("X-Cache-Status") == "MISS"
    inside = site.get("/", **{**german, "Sec_Fetch_Site": "same-origin"})
    assert inside.status == 200 and b'<html lang="en"' in inside.body


SLOW_CLIENTS = 40  # gunicorn alone stops answering with 13 (docs/operations.md)
CLIENT_TIMEOUTS = ("client_header_timeout", "client_body_timeout", "send_timeout")


def nginx_seconds(directive: str) -> int:
    """A timeout of deploy/nginx.conf, in seconds (written there as ``Ns``)."""
    values = re.findall(rf"^\s*{directive}\s+(\d+)s;", DEPLOYED_CONF.read_text(), re.MULTILINE)
    assert len(values) == 1, f"{directive} is set {len(values)} times in deploy/nginx.conf"
    return int(values[0])


@pytest.mark.parametrize("directive", CLIENT_TIMEOUTS)
def test_the_deployed_file_bounds_how_long_a_reader_may_take(directive):
    """nginx's defaults are 60 s; a slow client should hold a connection far less."""
    assert nginx_seconds(directive) <= 30


def test_slow_header_clients_neither_keep_readers_waiting_nor_stay(site):
    """Connections that send their headers a line at a time, never ending them, hold gunicorn's
    threads when gunicorn faces readers itself. In front of it nginx holds them alone, passes
    only whole requests on, and drops them once its header timeout is up."""
    header_timeout = nginx_seconds("client_header_timeout")
    with slow_header_clients(site.port, SLOW_CLIENTS) as slow:
        opened = time.monotonic()
        waits = []
        for number in range(20):
            for client in slow:
                client.drip()
            started = time.monotonic()
            answer = site.get(f"{ARTICLE}?slow-clients={number}")
            waits.append(time.monotonic() - started)
            assert answer.status == 200 and answer.cache_status == "MISS", answer.status
            time.sleep(0.1)
        assert max(waits) < 2, waits
        assert not any(client.is_closed() for client in slow), "closed before the timeout"
        while time.monotonic() < opened + header_timeout + 5 and not all(
            client.is_closed() for client in slow
        ):
            for client in slow:
                client.drip()
            time.sleep(0.5)
        held = time.monotonic() - opened
        still_open = sum(not client.is_closed() for client in slow)
    assert still_open == 0, f"{still_open} slow connection(s) still open after {held:.1f} s"
    assert held >= header_timeout - 1


@pytest.mark.parametrize("path", ["/metrics", "/metrics?format=text", "/%6Detrics", "//metrics"])
def test_nginx_answers_metrics_with_404_itself(site, path):
    """nginx reaches gunicorn from loopback, which ``/metrics`` answers (gunicorn's own port
    serves it here): so nginx must never forward it."""
    direct = http.client.HTTPConnection("127.0.0.1", site.app_port, timeout=15)
    try:
        direct.request("GET", "/metrics")
        response = direct.getresponse()
        assert response.status == 200
        assert b"globalupdates_http_requests_total" in response.read()
    finally:
        direct.close()
    answer = site.get(path)
    if answer.status in (301, 308):
        answer = site.get(answer.header("Location") or "")
    assert answer.status == 404
    assert b"globalupdates_" not in answer.body
