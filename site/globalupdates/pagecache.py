"""Pages rendered once per variant and served from memory.

A page is a pure function of its URL, the content version, the site's own version (its
templates, static files, consent registry and settings) and the reader's state as the
consent engine resolves it (granted categories, banner or not, GPC), plus the few reader
preferences a feature declares (text size). Those make the cache key, and nothing else
does, so the key can never hold a reader's identity and a body can never hold one either.

Each entry keeps the body gzipped once, with a strong ETag over the uncompressed bytes; a
reader whose browser takes gzip gets those bytes as they are (under the same ETag with
``-gzip`` added, since a strong validator names one representation), anyone else gets them
inflated. The store is Flask-Caching: a bounded in-memory cache per worker by default, or
Redis (``CACHE_TYPE=RedisCache``) so that several hosts render each variant once.

How an edit reaches readers: each worker reads the content version (a count and the newest
``modified_at`` of the articles) at most every ``CONTENT_CHECK_SECONDS`` (10 s), and the
version is part of every key, so an import or edit made by any process on any host is in
every worker's pages within that time. A proxy keeps a first-visit page for
``SHARED_PAGE_MAX_AGE`` (30 s) at most. The kept responses (``KeptResponses``) live as long
as the check interval, so one made just before a worker noticed the change adds up to 10 s:
a reader sees an edit within 20 s, a first visitor behind nginx within 50 s.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, make_response, request

from .consent import allowed_once_providers, share_page
from .extensions import page_cache

KeyPart = Callable[[], object]
PAGE_VARY = "Accept-Encoding, Cookie, Sec-GPC"
SOURCE_SUFFIXES = frozenset({".html", ".css", ".js", ".svg", ".json"})


@dataclass(frozen=True)
class CachedPage:
    """A rendered HTML page, gzipped once."""

    gzipped: bytes
    etag: str


class ContentVersion:
    """The content version, read from the database at most once per interval per worker."""

    def __init__(self, read: Callable[[], object], interval: float) -> None:
        self._read = read
        self._interval = interval
        self._value: object = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> object:
        now = time.monotonic()
        if now - self._checked_at < self._interval:
            return self._value
        with self._lock:
            if now - self._checked_at >= self._interval:
                self._value = self._read()
                self._checked_at = time.monotonic()
        return self._value


@dataclass
class PageCacheState:
    site_version: str
    content_version: ContentVersion
    key_parts: list[KeyPart]


def site_version(app: Flask, *parts: object) -> str:
    """A digest of the templates, styles and scripts and of ``parts`` (the registry, the
    settings pages show), so a deploy or a setting changes every key."""
    digest = hashlib.sha256(repr(parts).encode())
    for folder in (Path(app.root_path, app.template_folder or ""), Path(app.static_folder or "")):
        for path in sorted(p for p in folder.rglob("*") if p.suffix in SOURCE_SUFFIXES):
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def init_app(
    app: Flask,
    content_version: Callable[[], object],
    site_version: str,
    page_cookies: frozenset[str] = frozenset(),
    negotiate: Callable[[dict[str, Any]], str] = lambda environ: "",
) -> None:
    """Bind the page cache. ``page_cookies`` names the cookies whose values change a page;
    ``negotiate`` tells, from a request, what a response varies on besides the key (the
    edition the bare ``/`` sends a reader to), "" when nothing."""
    page_cache.init_app(app)
    if app.config["KEPT_RESPONSES"]:
        app.wsgi_app = KeptResponses(  # type: ignore[method-assign]
            app.wsgi_app,
            lifetime=float(app.config["CONTENT_CHECK_SECONDS"]),
            capacity=int(app.config["KEPT_RESPONSES"]),
            readers=int(app.config["KEPT_READERS"]),
            session_cookie=app.config["SESSION_COOKIE_NAME"],
            page_cookies=page_cookies,
            negotiate=negotiate,
        )
    app.extensions["page_cache"] = PageCacheState(
        site_version=site_version,
        content_version=ContentVersion(content_version, float(app.config["CONTENT_CHECK_SECONDS"])),
        key_parts=[],
    )


def add_key_part(app: Flask, part: KeyPart) -> None:
    """Declare one more thing that pages depend on (a reader preference, say)."""
    app.extensions["page_cache"].key_parts.append(part)


def state() -> PageCacheState:
    return current_app.extensions["page_cache"]


def page_key() -> str:
    cache = state()
    environ = request.environ
    variant = tuple(part() for part in cache.key_parts)
    environ[VARIANT_KEY] = variant
    parts = (
        *url_key(environ),
        cache.site_version,
        cache.content_version.current(),
        *variant,
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


def cached_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve the view's page from the cache, rendering it only when its variant is missing.

    Only a 200 HTML answer is kept; anything else (a 404, a refused search) goes out as the
    view made it. So does a page on which the view allowed an embed once: that is one
    reader's act, and its policy frames a provider the shared page must not.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = page_key()
        entry = page_cache.get(key)
        if entry is None:
            response = make_response(view(*args, **kwargs))
            if not is_cacheable_page(response):
                return response
            entry = cache_entry(response)
            page_cache.set(key, entry)
        return respond(entry)

    return wrapper


def cache_entry(response: Response) -> CachedPage:
    body = response.get_data()
    return CachedPage(
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        etag=hashlib.sha256(body).hexdigest()[:32],
    )


def is_cacheable_page(response: Response) -> bool:
    return (
        response.status_code == 200
        and response.mimetype == "text/html"
        and not allowed_once_providers()
    )


def respond(entry: CachedPage) -> Response:
    share_page()
    environ = request.environ
    gzipped = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    etag = f'"{entry.etag}-gzip"' if gzipped else f'"{entry.etag}"'
    headers = [("ETag", etag), ("Vary", PAGE_VARY)]
    if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
        return Response(status=304, headers=headers)
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
        return Response(entry.gzipped, headers=headers, mimetype="text/html")
    return Response(gzip.decompress(entry.gzipped), headers=headers, mimetype="text/html")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip; a refusal (``q=0``) is read as no."""
    return "gzip" in accept_encoding and "q=0" not in accept_encoding.replace(" ", "")


VARIANT_KEY = "globalupdates.page_variant"
NO_COOKIE = ("no cookie",)


class KeptResponses:
    """WSGI middleware that answers a repeated page request from memory, before Flask.

    Whole responses that the site gave to a GET of a cached page, with no ``Set-Cookie``,
    are kept for ``CONTENT_CHECK_SECONDS`` (the same bound the content version is read
    with, so an edit reaches readers no later than through the page cache) under a key of
    the URL, the GPC signal, gzip or not, the edition the bare ``/`` would send the request to,
    the names of the cookies sent and the page variant:

    - a request with no cookie at all is a reader with no choice: one variant for everyone;
    - a request with the session cookie is a reader whose variant (granted categories,
      banner, GPC, text size) the site worked out from that cookie. Each worker remembers
      which variant a verified cookie value gave, for the same bound, so the next request
      with that cookie needs no Flask at all; the response itself is shared by every reader
      in the same variant. A changed choice is a new cookie value, unknown here, so it goes
      through the site.

    The cookies whose values change a page (the text size) are part of the key; the names of
    the others are, so a request carrying a cookie the site would expire goes through the site.
    Anything else (a POST, a 404, a response that sets a cookie) passes through untouched. At
    most ``KEPT_RESPONSES`` responses and ``KEPT_READERS`` cookie values are kept per worker.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        lifetime: float,
        capacity: int,
        readers: int,
        session_cookie: str,
        page_cookies: frozenset[str],
        negotiate: Callable[[dict[str, Any]], str],
    ) -> None:
        self.app = app
        self.negotiate = negotiate
        self.lifetime = lifetime
        self.capacity = capacity
        self.reader_capacity = readers
        self.session_cookie = session_cookie
        self.page_cookies = page_cookies
        self.kept: OrderedDict[tuple[Any, ...], KeptResponse] = OrderedDict()
        self.readers: OrderedDict[str, tuple[float, tuple[Any, ...]]] = OrderedDict()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        session, others = self.split_cookies(environ.get("HTTP_COOKIE"))
        asked = (*request_key(environ), self.negotiate(environ))
        variant = self.variant_of(session, asked, others)
        if variant is not None:
            kept = self.kept.get((*asked, others, variant))
            if kept is not None and time.monotonic() - kept.kept_at < self.lifetime:
                return kept.answer(environ, start_response)
        if method != "GET" or (session is None and others):
            return self.app(environ, start_response)
        return self.keep_if_shareable(environ, start_response, session, asked, others)

    def split_cookies(self, header: str | None) -> tuple[str | None, tuple[str, ...]]:
        """The session cookie's value, and the other cookies as the key needs them."""
        if not header:
            return None, ()
        session = None
        others = []
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.session_cookie:
                session = value
            elif name in self.page_cookies:
                others.append(f"{name}={value}")
            elif name:
                others.append(name)
        return session, tuple(sorted(others))

    def variant_of(
        self, session: str | None, asked: tuple[str, ...], others: tuple[str, ...]
    ) -> tuple[Any, ...] | None:
        """The variant a request gets: one for every cookieless request, and for a session
        cookie the one the site worked out from it (with the same signal and cookies)."""
        if session is None:
            return NO_COOKIE
        known = self.readers.get(reader_key(session, asked, others))
        if known is None or time.monotonic() - known[0] >= self.lifetime:
            return None
        return known[1]

    def keep_if_shareable(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        session: str | None,
        asked: tuple[str, ...],
        others: tuple[str, ...],
    ) -> Any:
        seen: list[Any] = []

        def remember(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            seen[:] = [status, headers]
            return start_response(status, headers, *exc_info)

        answer = self.app(environ, remember)
        status, headers = seen
        variant = environ.get(VARIANT_KEY)
        if variant is None or not (status.startswith("200") and is_shareable(headers)):
            return answer
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        now = time.monotonic()
        if session is not None:
            self.readers[reader_key(session, asked, others)] = (now, variant)
            trim(self.readers, self.reader_capacity)
        else:
            variant = NO_COOKIE
        self.kept[(*asked, others, variant)] = KeptResponse(status, headers, body, now)
        trim(self.kept, self.capacity)
        return [body]


def reader_key(session: str, asked: tuple[str, ...], others: tuple[str, ...]) -> str:
    """A reader's cookie with the signal and the other cookies that their variant came with."""
    return f"{session}|{asked[GPC_FIELD]}|{';'.join(others)}"


def trim(kept: OrderedDict[Any, Any], capacity: int) -> None:
    while len(kept) > capacity:
        kept.popitem(last=False)


@dataclass(frozen=True)
class KeptResponse:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    kept_at: float

    def answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        etag = next((value for name, value in self.headers if name == "ETag"), None)
        if etag is not None and etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 NOT MODIFIED", not_modified_headers(self.headers))
            return []
        start_response(self.status, list(self.headers))
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.body]


ENTITY_HEADERS = frozenset({"content-length", "content-type", "content-encoding"})


def not_modified_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in ENTITY_HEADERS]


def is_shareable(headers: list[tuple[str, str]]) -> bool:
    """A response that sets no cookie and that some cache may keep."""
    names = {name.lower(): value for name, value in headers}
    return "set-cookie" not in names and "no-store" not in names.get("cache-control", "no-store")


GPC_FIELD = 5  # where request_key puts the GPC signal


def url_key(environ: dict[str, Any]) -> tuple[str, ...]:
    """The URL as the site was asked for it (ProxyFix has already put in the public one)."""
    return (
        environ["wsgi.url_scheme"],
        environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
    )


def request_key(environ: dict[str, Any]) -> tuple[str, ...]:
    encodings = environ.get("HTTP_ACCEPT_ENCODING", "")
    return (
        *url_key(environ),
        "gpc" if environ.get("HTTP_SEC_GPC") == "1" else "",
        "gzip" if accepts_gzip(encodings) else "",
    )
