"""The site as a browser reaches it through deploy/nginx.conf: requests, answers, readers'
cookies, and the copy of ``static/`` nginx serves. Shared by the tests of the proxy."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.message import Message
from pathlib import Path
from urllib.parse import urlencode

from globalupdates.config import PROJECT_ROOT
from tests.support.consent import SAME_ORIGIN, cookie_value
from tests.support.pages import ARTICLE

STYLESHEET = "css/site.css"
PROXY_FIX = {f"FLASK_PROXY_FIX_X_{name}": "1" for name in ("FOR", "PROTO", "HOST", "PORT")}
# A handful of choices from one address in one test run; keep the limits out of the way.
RAISED_LIMITS = {
    f"FLASK_RATELIMIT_{name}": "10000 per minute"
    for name in ("CONSENT_PER_READER", "CONSENT_PER_ADDRESS", "BEACON_PER_READER")
}
MISSING_NGINX = "nginx is not installed; `make test` installs it (apt-get install -y nginx)"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def every(self, name: str) -> list[str]:
        """Each value of a header, as many times as it was sent."""
        return self.headers.get_all(name) or []

    def cookies_set(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []

    def session_cookie(self) -> str | None:
        return cookie_value(self.cookies_set())

    def cookies(self) -> dict[str, str]:
        """Each cookie this answer sets (an expired one as ""), by name."""
        found = {}
        for header in self.cookies_set():
            name, _, rest = header.partition("=")
            expired = "max-age=0" in header.lower() or "1970" in header
            found[name.strip()] = "" if expired else rest.split(";", 1)[0]
        return found

    @property
    def cache_status(self) -> str | None:
        return self.header("X-Cache-Status")

    def text(self) -> str:
        return self.body.decode(errors="replace")


def once_stored(ask: Callable[[], Answer], tries: int = 20, pause: float = 0.05) -> Answer:
    """Ask for a page the request before filled nginx's cache with. nginx stores an answer by
    renaming its temporary file once the upstream is done, which may come after the client
    already holds the last byte: under load the next request can arrive first and miss. So
    ask again, a bounded number of times, until nginx answers from its cache; the last answer
    is returned either way, for the test to judge."""
    for _ in range(tries):
        answer = ask()
        if answer.cache_status == "HIT":
            return answer
        time.sleep(pause)
    return answer


@dataclass
class Site:
    """The site as a browser reaches it: through nginx. ``app_port`` is gunicorn's own."""

    port: int
    app_port: int
    # The loopback address requests come from (a reader's place in tests/support/geoip.py);
    # None lets the kernel choose, 127.0.0.1.
    source: str | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reader_at(self, address: str) -> Site:
        """The same site, reached from ``address``."""
        return replace(self, source=address)

    def request(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Answer:
        source = (self.source, 0) if self.source else None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15, source_address=source)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=header_names(headers))

    def choose(
        self,
        action: str,
        cookie: str | None = None,
        categories: tuple[str, ...] = (),
        services: tuple[str, ...] = (),
        **headers,
    ) -> Answer:
        fields = [("action", action), ("next", ARTICLE), *((key, "on") for key in categories)]
        fields += [("services", key) for key in services]
        sent = {**FORM, **header_names(headers)}
        if cookie:
            sent["Cookie"] = f"gu_session={cookie}"
        return self.request("POST", "/consent", urlencode(fields), sent)

    def count_view(self, cookie: str) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "Cookie": f"gu_session={cookie}",
            **SAME_ORIGIN,
        }
        return self.request("POST", "/features/pageview", json.dumps({"path": ARTICLE}), headers)


def header_names(headers: dict[str, str]) -> dict[str, str]:
    """Keyword arguments such as ``Sec_GPC`` as the header names they stand for."""
    return {name.replace("_", "-"): value for name, value in headers.items()}


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def fresh(path: str, label: str) -> str:
    """The same page under a URL no other test has put in the cache."""
    separator = "&" if "?" in path else "?"
    return f"{path}{separator}nginx-test={label}"


def digested_name(static: Path, name: str) -> str:
    """The name the asset step gives a file: its MD5 before the extension."""
    stem, dot, extension = name.rpartition(".")
    digest = hashlib.md5((static / name).read_bytes()).hexdigest()
    return f"{stem}-{digest}{dot}{extension}"


@contextmanager
def static_root_for_nginx() -> Iterator[Path]:
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
