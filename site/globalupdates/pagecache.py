"""Pages rendered once per variant and served from memory.

A page is a pure function of its URL, the content version, the site's own version (its
templates, static files, consent registry and settings) and the reader's state as the
consent engine resolves it (granted categories, banner or not, GPC), plus the few reader
preferences a feature declares (text size). Those make the cache key, and nothing else
does, so the key can never hold a reader's identity and a body can never hold one either.

Each entry keeps the body gzipped once, with a strong ETag over the uncompressed bytes; a
reader whose browser takes gzip gets those bytes as they are, anyone else gets them
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
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, make_response, request

from .consent import allowed_once_providers, restore_allowed_once, share_page
from .extensions import page_cache

KeyPart = Callable[[], object]
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
    parts = (
        request.url,
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
    if request.if_none_match.contains(entry.etag):
        response = Response(status=304)
    elif request.accept_encodings["gzip"]:
        response = Response(entry.gzipped, mimetype=entry.mimetype)
        response.content_encoding = "gzip"
    else:
        response = Response(gzip.decompress(entry.gzipped), mimetype=entry.mimetype)
    response.set_etag(entry.etag)
    response.vary.add("Accept-Encoding")
    return response
