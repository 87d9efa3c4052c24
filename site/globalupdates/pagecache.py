"""Pages rendered once per variant and served from memory.

A page is a pure function of its request (method, scheme, host as Flask reads it, path and
query), the content version, the site's own version (its templates, static files, consent
registry and settings) and the reader's variant: what the consent engine resolved (granted
categories, banner or not, GPC) and the few reader preferences a feature declares (text
size). Those make the cache key, and nothing else does, so the key can never hold a reader's
identity and a body can never hold one either.

``reader_variant`` is the one function that decides a reader's variant. Flask's page cache
calls it with the state resolved from Flask's session, and the kept responses in front of
Flask (``keptresponses``) with the state resolved from the same cookie checked by the same
function (``sessions.session_contents``), so the two layers cannot disagree.

Each entry keeps the body gzipped once, with a strong ETag over the uncompressed bytes; a
reader whose browser takes gzip gets those bytes as they are (under the same ETag with
``-gzip`` added, since a strong validator names one representation), anyone else gets them
inflated. The store is Flask-Caching: by default an in-memory cache per worker bounded in
bytes (``pagestore``), or Redis (``CACHE_TYPE=RedisCache``) so that several hosts render each
variant once. A store that fails is a cache miss, never an error page (``FailSoftStore``).

How an edit reaches readers: each worker reads the content version (a count and the newest
``modified_at`` of the articles) at most every ``CONTENT_CHECK_SECONDS`` (10 s), and the
version is part of every key here and in the kept responses, so an import or edit made by any
process on any host is in every worker's pages within that time. A proxy keeps a page for
``SHARED_PAGE_MAX_AGE`` (30 s) at most, so a reader behind nginx sees an edit within 40 s.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, has_app_context, make_response, request
from werkzeug.datastructures import Headers
from werkzeug.http import parse_accept_header
from werkzeug.wsgi import get_host

from . import redisoptions, sharedcache
from .consent.model.choice import ConsentState
from .consent.web.audit_marks import audit_regime
from .consent.web.embed_providers import allowed_once_providers
from .consent.web.engine import current_consent
from .consent.web.request_hooks import share_page
from .cookies import request_cookies
from .extensions import page_cache
from .httpheaders import forbids_storing, not_modified
from .metrics.instruments import CACHE_BYTES, CACHE_ENTRIES, CACHE_ERRORS
from .metrics.requests import LAYER, PAGE_CACHE
from .pagestore import BoundedMemoryCache

Environ = dict[str, Any]
Cookies = Mapping[str, str]
KeyPart = Callable[[ConsentState, Cookies], object]
PAGE_VARY = "Accept-Encoding, Cookie, Sec-GPC"
SOURCE_SUFFIXES = frozenset({".html", ".css", ".js", ".svg", ".json"})
KEPT_KEY = "globalupdates.kept_key"  # environ: the key the kept responses may keep this under


@dataclass(frozen=True)
class CachedPage:
    """A rendered HTML page, gzipped once."""

    gzipped: bytes
    etag: str


class ContentVersion:
    """The content version, read from the database at most once per interval per worker."""

    def __init__(self, app: Flask, read: Callable[[], object], interval: float) -> None:
        self._app = app
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
                self._value = self._read_in_app()
                self._checked_at = time.monotonic()
        return self._value

    def _read_in_app(self) -> object:
        """Read with the app's database, also when asked from outside a request (the kept
        responses run before Flask)."""
        if has_app_context():
            return self._read()
        with self._app.app_context():
            return self._read()


class FailSoftStore:
    """The page store as pages use it: a store that fails (Redis down, or hanging until its
    timeout) is a cache miss, and the page is rendered.

    After a failure the store is not tried again in this worker for ``retry_seconds``, so
    readers do not each wait for Redis's timeout while it is down. A failure is logged once
    per such interval, with the failures and the lookups made without the store since the
    last report (the counts that matter: how often pages were rendered for want of it).
    """

    def __init__(self, app: Flask, retry_seconds: float) -> None:
        self._app = app
        self._retry_seconds = retry_seconds
        self._resting_until = float("-inf")
        self._failures = 0
        self._bypassed = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        if self._resting():
            return None
        try:
            return page_cache.get(key)
        except Exception as error:  # noqa: BLE001 - whatever the store raises is a miss
            self._failed(error)
            return None

    def set(self, key: str, entry: CachedPage) -> None:
        if self._resting():
            return
        try:
            page_cache.set(key, entry)
        except Exception as error:  # noqa: BLE001 - a page not kept is only a later miss
            self._failed(error)
        else:
            count_store_size(page_cache.cache)

    def _resting(self) -> bool:
        if time.monotonic() >= self._resting_until:
            return False
        with self._lock:
            self._bypassed += 1
        return True

    def _failed(self, error: Exception) -> None:
        CACHE_ERRORS.labels("page_cache").inc()
        with self._lock:
            self._failures += 1
            now = time.monotonic()
            if now < self._resting_until:
                return
            self._resting_until = now + self._retry_seconds
            failures, bypassed = self._failures, self._bypassed
            self._failures = self._bypassed = 0
        self._app.logger.warning(
            "page cache unavailable, pages rendered without it for the next %g s: %s: %s "
            "(%d failure(s) and %d lookup(s) without the cache since the last report)",
            self._retry_seconds,
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
            failures,
            bypassed,
        )


def count_store_size(store: object) -> None:
    """The worker's in-memory page store's size, after a page is kept (Redis's is Redis's)."""
    if isinstance(store, BoundedMemoryCache):
        entries, size = store.usage()
        CACHE_ENTRIES.labels("page_cache").set(entries)
        CACHE_BYTES.labels("page_cache").set(size)


@dataclass
class PageCacheState:
    site_version: str
    content_version: ContentVersion
    store: FailSoftStore
    key_parts: list[KeyPart]
    page_cookies: frozenset[str]
    negotiate: Callable[[Environ], str]

    def variant(self, state: ConsentState, cookies: Cookies) -> tuple[object, ...]:
        """The reader's variant: each declared key part of this state and these cookies."""
        return tuple(part(state, cookies) for part in self.key_parts)


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
    negotiate: Callable[[Environ], str] = lambda environ: "",
) -> None:
    """Bind the page cache. ``page_cookies`` names the cookies whose values change a page;
    ``negotiate`` tells, from a request, what a response varies on besides the key (the
    edition the bare ``/`` sends a reader to), "" when nothing."""
    page_cache.init_app(app, config=store_config(app))
    app.extensions["page_cache"] = PageCacheState(
        site_version=site_version,
        store=FailSoftStore(app, float(app.config["PAGE_CACHE_RETRY_SECONDS"])),
        content_version=ContentVersion(
            app, content_version, float(app.config["CONTENT_CHECK_SECONDS"])
        ),
        key_parts=[],
        page_cookies=page_cookies,
        negotiate=negotiate,
    )


def store_config(app: Flask) -> dict[str, Any]:
    """Redis's client options with the site's timeouts, when the pages are kept in Redis."""
    if not redisoptions.names_redis(app.config["CACHE_TYPE"]):
        return {}
    return {"CACHE_OPTIONS": redisoptions.client_options(app, app.config.get("CACHE_OPTIONS"))}


def add_key_part(app: Flask, part: KeyPart) -> None:
    """Declare one more thing that pages depend on (a reader preference, say)."""
    app.extensions["page_cache"].key_parts.append(part)


def state_of(app: Flask) -> PageCacheState:
    return app.extensions["page_cache"]


def url_key(environ: Environ) -> tuple[str, ...]:
    """The request as a page depends on it: method, scheme, host as Flask reads it (with the
    server's port when no Host was sent), script root, path and query. ProxyFix has already put
    in the public scheme and host."""
    return (
        environ.get("REQUEST_METHOD", ""),
        environ["wsgi.url_scheme"],
        get_host(environ),
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
    )


def accepts_gzip(environ: Environ) -> bool:
    return takes_gzip(environ.get("HTTP_ACCEPT_ENCODING") or "")


@lru_cache(maxsize=256)
def takes_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip, as Werkzeug reads it: gzip's own entry decides
    (or ``x-gzip``'s, its old name, when only that is named), else ``*``; a quality of zero
    refuses. Browsers send a handful of spellings, so each is read once."""
    accepted = parse_accept_header(accept_encoding)
    named = {value.lower() for value in accepted.values()}
    spelling = "x-gzip" if "x-gzip" in named and "gzip" not in named else "gzip"
    return accepted.quality(spelling) > 0


def kept_key(
    app: Flask, environ: Environ, state: ConsentState, cookies: Cookies
) -> tuple[object, ...]:
    """Everything a whole response to a page request depends on, for the kept responses.

    Beyond the page's own key: gzip or not, what the bare ``/`` negotiates, the names of the
    other cookies sent (and the values of those that change a page), and what the response
    tells caches (which depends on whether a session cookie was sent and whether a proxy's
    key was verified on this request).
    """
    pages = state_of(app)
    return (
        *url_key(environ),
        accepts_gzip(environ),
        pages.negotiate(environ),
        pages.content_version.current(),
        other_cookies(app, cookies),
        pages.variant(state, cookies),
        sharedcache.verdict(app, environ, cookies, state),
    )


def other_cookies(app: Flask, cookies: Cookies) -> tuple[str, ...]:
    """The cookies beside the session and the variant cookie, each by name (a cookie the site
    would expire makes a response it never keeps) or, for those that change a page, with its
    value."""
    pages = state_of(app)
    skipped = sharedcache.own_cookie_names(app)
    return tuple(
        sorted(
            f"{name}={cookies[name]}" if name in pages.page_cookies else name
            for name in cookies
            if name not in skipped
        )
    )


def page_key() -> str:
    """The page cache's key for this request, after noting the kept responses' key in the
    environ (so the layer in front of Flask keeps only what Flask worked out alike)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    pages = state_of(app)
    environ = request.environ
    state = current_consent()
    cookies = request_cookies(environ)
    environ[KEPT_KEY] = kept_key(app, environ, state, cookies)
    parts = (
        *url_key(environ),
        pages.site_version,
        pages.content_version.current(),
        *pages.variant(state, cookies),
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


def cached_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve the view's page from the cache, rendering it only when its variant is missing.

    Only a 200 HTML answer that may be stored is kept; anything else (a 404, a refused search,
    a page marked ``no-store``) goes out as the view made it. So does a page on which the view
    allowed an embed once: that is one reader's act, and its policy frames a provider the
    shared page must not. A page the cookie audit asks for under a regime it names is
    rendered, never read from the cache nor kept (``audit_marks``).
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if audit_regime() is not None:
            return view(*args, **kwargs)
        key = page_key()
        store = state_of(current_app).store
        entry = store.get(key)
        if entry is not None:
            request.environ[LAYER] = PAGE_CACHE
        else:
            response = make_response(view(*args, **kwargs))
            if not is_cacheable_page(response):
                request.environ.pop(KEPT_KEY, None)
                return response
            entry = cache_entry(response)
            store.set(key, entry)
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
        and not forbids_storing(response.headers.get("Cache-Control"))
        and not allowed_once_providers()
    )


def respond(entry: CachedPage) -> Response:
    share_page()
    environ = request.environ
    gzipped = accepts_gzip(environ)
    etag = f"{entry.etag}-gzip" if gzipped else entry.etag
    headers = Headers([("ETag", f'"{etag}"'), ("Vary", PAGE_VARY)])
    if not_modified(environ, etag):
        return Response(status=304, headers=headers)
    if gzipped:
        headers.add("Content-Encoding", "gzip")
        return Response(entry.gzipped, headers=headers, mimetype="text/html")
    return Response(gzip.decompress(entry.gzipped), headers=headers, mimetype="text/html")
