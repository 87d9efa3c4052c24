"""The site under gunicorn behind deploy/nginx.conf as it is deployed (only the operator's three
lines are changed): nginx caches first-visit pages and nothing a reader's choice shapes, lets
choices and beacons through, passes the forwarded headers the app's ProxyFix expects, and
serves /static/ itself.

nginx is required here, not optional: ``make test`` installs it, so without it these fail.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import urlencode

import pytest
from deployed_nginx import check_config, deployed_nginx, nginx_binary
from gunicorn_server import running_gunicorn

from globalupdates.config import PROJECT_ROOT

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"
STYLESHEET = "css/site.css"
PROXY_FIX = {f"FLASK_PROXY_FIX_X_{name}": "1" for name in ("FOR", "PROTO", "HOST", "PORT")}
# A handful of choices from one address in one test run; keep the limits out of the way.
RAISED_LIMITS = {
    f"FLASK_RATELIMIT_{name}": "10000 per minute"
    for name in ("CONSENT_PER_READER", "CONSENT_PER_ADDRESS", "BEACON_PER_READER")
}
SESSION_COOKIE = re.compile(r"^gu_session=([^;]+)")
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
MISSING_NGINX = "nginx is not installed; `make test` installs it (apt-get install -y nginx)"


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def cookies_set(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []

    def session_cookie(self) -> str | None:
        for line in self.cookies_set():
            match = SESSION_COOKIE.match(line)
            if match:
                return match.group(1)
        return None


@dataclass
class Site:
    """The site as a browser reaches it: through nginx. ``app_port`` is gunicorn's own."""

    port: int
    app_port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=_header_names(headers))

    def choose(self, action: str, cookie: str | None = None, **headers: str) -> Answer:
        form = urlencode({"action": action, "next": ARTICLE})
        sent = {"Content-Type": "application/x-www-form-urlencoded", **_header_names(headers)}
        if cookie:
            sent["Cookie"] = f"gu_session={cookie}"
        return self.request("POST", "/consent", form, sent)

    def count_view(self, cookie: str) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "Cookie": f"gu_session={cookie}",
            **SAME_ORIGIN,
        }
        return self.request("POST", "/features/pageview", json.dumps({"path": ARTICLE}), headers)


def _header_names(headers: dict[str, str]) -> dict[str, str]:
    """Keyword arguments such as ``Sec_GPC`` as the header names they stand for."""
    return {name.replace("_", "-"): value for name, value in headers.items()}


def fresh(path: str, label: str) -> str:
    """The same page under a URL no other test has put in the cache."""
    return f"{path}?nginx-test={label}"


def accepted_all(site: Site) -> str:
    answer = site.choose("accept_all", **SAME_ORIGIN)
    assert answer.status == 303, answer.body[:300]
    cookie = answer.session_cookie()
    assert cookie, f"no gu_session in {answer.cookies_set()}"
    return cookie


def digested_name(static: Path, name: str) -> str:
    """The name the asset step gives a file: its MD5 before the extension."""
    stem, dot, extension = name.rpartition(".")
    digest = hashlib.md5((static / name).read_bytes()).hexdigest()
    return f"{stem}-{digest}{dot}{extension}"


@pytest.fixture(scope="module")
def site_root() -> Iterator[Path]:
    """A copy of static/ with a content-named copy of the stylesheet, readable by nginx's
    workers (they run as ``nobody`` when the suite runs as root)."""
    root = Path(tempfile.mkdtemp(prefix="gu-static-"))
    try:
        root.chmod(0o755)
        static = root / "static"
        shutil.copytree(PROJECT_ROOT / "static", static)
        shutil.copyfile(static / STYLESHEET, static / digested_name(static, STYLESHEET))
        for path in [static, *static.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
        running_gunicorn(f"sqlite:///{database}", folder, **settings) as server,
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


def test_a_reader_with_a_choice_is_never_served_from_the_cache(site):
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
    assert counts[1] == counts[0] + 1
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
        assert answer.header("Content-Security-Policy") is None, "the app answered"
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
    linked = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)
    assert linked, "the page links no stylesheet or script under /static/"
    for path in linked:
        answer = site.get(path, Accept_Encoding="gzip")
        assert answer.status == 200, path
        assert answer.header("X-Cache-Status") is None, f"{path} reached the app"
        assert answer.header("Cache-Control") == "public, max-age=31536000, immutable", path
        assert answer.header("Content-Encoding") == "gzip", path
