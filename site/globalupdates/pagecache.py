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
``SHARED_PAGE_MAX_AGE`` (30 s) at most, so a first visitor behind nginx sees it within 40 s,
and a reader with a choice (whose pages are private and revalidated) within 10 s.
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

from .consent import allowed_once_providers, restore_allowed_once, share_page
from .extensions import page_cache

KeyPart = Callable[[], object]
PAGE_VARY = "Accept-Encoding, Cookie, Sec-GPC"
SOURCE_SUFFIXES = frozenset({".html", ".css", ".js", ".svg", ".json"})


@dataclass(frozen=True)
class CachedPage:
    gzipped: bytes
    etag: str
    mimetype: str
    allowed_once: frozenset[str]


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


def init_app(app: Flask, content_version: Callable[[], object], site_version: str) -> None:
    page_cache.init_app(app)
    if app.config["FIRST_VISIT_PAGES"]:
        app.wsgi_app = FirstVisitPages(  # type: ignore[method-assign]
            app.wsgi_app,
            lifetime=float(app.config["CONTENT_CHECK_SECONDS"]),
            capacity=int(app.config["FIRST_VISIT_PAGES"]),
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
    parts = (
        environ["wsgi.url_scheme"],
        request.host,
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
        cache.site_version,
        cache.content_version.current(),
        *(part() for part in cache.key_parts),
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


def cached_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve the view's page from the cache, rendering it only when its variant is missing.

    Only a 200 HTML answer is kept; anything else (a 404, a refused search) goes out as the
    view made it. The entry also keeps which embeds the view allowed once, so the policy
    sent with a cached page is the one it was rendered under.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = page_key()
        entry = page_cache.get(key)
        if entry is None:
            response = make_response(view(*args, **kwargs))
            if response.status_code != 200 or response.mimetype != "text/html":
                return response
            entry = cache_entry(response)
            page_cache.set(key, entry)
        else:
            restore_allowed_once(entry.allowed_once)
        return respond(entry)

    return wrapper


def cache_entry(response: Response) -> CachedPage:
    body = response.get_data()
    return CachedPage(
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        etag=hashlib.sha256(body).hexdigest()[:32],
        mimetype=response.mimetype or "text/html",
        allowed_once=allowed_once_providers(),
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
        return Response(entry.gzipped, headers=headers, mimetype=entry.mimetype)
    return Response(gzip.decompress(entry.gzipped), headers=headers, mimetype=entry.mimetype)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip; a refusal (``q=0``) is read as no."""
    return "gzip" in accept_encoding and "q=0" not in accept_encoding.replace(" ", "")


class FirstVisitPages:
    """WSGI middleware that answers a repeated first visit from memory, as a proxy would.

    A request with no cookie at all is a reader with no choice, and the site gives every
    such reader the same response for a URL (given the GPC signal and whether gzip is
    accepted). When the site has answered one with a page it calls public (``Cache-Control:
    public``, no ``Set-Cookie``), the whole response is kept here for
    ``CONTENT_CHECK_SECONDS`` and given to the next first visitors without entering Flask.
    That bound is the same one the content version is read with, so an edit reaches first
    visitors no later than it reaches anyone else. Anything else (a cookie, a POST, a 404)
    goes to the site untouched. At most ``FIRST_VISIT_PAGES`` responses are kept per worker.
    """

    def __init__(self, app: Callable[..., Any], lifetime: float, capacity: int) -> None:
        self.app = app
        self.lifetime = lifetime
        self.capacity = capacity
        self.kept: OrderedDict[tuple[str, ...], KeptResponse] = OrderedDict()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD")
        if "HTTP_COOKIE" in environ or method not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        key = first_visit_key(environ)
        kept = self.kept.get(key)
        if kept is not None and time.monotonic() - kept.kept_at < self.lifetime:
            return kept.answer(environ, start_response)
        if method != "GET":
            return self.app(environ, start_response)
        return self.keep_if_public(key, environ, start_response)

    def keep_if_public(
        self, key: tuple[str, ...], environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        seen: list[Any] = []

        def remember(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            seen[:] = [status, headers]
            return start_response(status, headers, *exc_info)

        answer = self.app(environ, remember)
        status, headers = seen
        if not (status.startswith("200") and is_public(headers)):
            return answer
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        self.kept[key] = KeptResponse(status, headers, body, time.monotonic())
        while len(self.kept) > self.capacity:
            self.kept.popitem(last=False)
        return [body]


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


def is_public(headers: list[tuple[str, str]]) -> bool:
    names = {name.lower(): value for name, value in headers}
    return "set-cookie" not in names and names.get("cache-control", "").startswith("public")


def first_visit_key(environ: dict[str, Any]) -> tuple[str, ...]:
    encodings = environ.get("HTTP_ACCEPT_ENCODING", "")
    return (
        environ["wsgi.url_scheme"],
        environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
        "gpc" if environ.get("HTTP_SEC_GPC") == "1" else "",
        "gzip" if accepts_gzip(encodings) else "",
    )
