"""Which paths are pages a reader can read.

Each package declares its page endpoints, with a check of whether a page exists for the values
in a path, so that something that counts pages (the page-view beacon) counts only real ones:
not a health check, a feed, or an article that was never published.

The answer for each path is kept per content version (``PageMemo``), so a beacon for a page
the worker has seen asks the database nothing, and a path that is no page is refused from
memory as often as it is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from flask import Flask, current_app
from werkzeug.exceptions import HTTPException

from .editions import declare_edition_endpoint

PageCheck = Callable[[dict[str, Any]], bool]
PAGE_MEMO_SIZE = 4096  # paths per worker; each entry is a path of at most 300 characters


@dataclass
class PageMemo:
    """Whether each path asked about is a page, under one content version: an import or an
    edit moves the version and empties the memo, so an article removed stops being counted
    (and one added starts) within the interval the page cache reads the version at."""

    version: object = None
    known: LRUCache[str, bool] = field(default_factory=lambda: LRUCache(PAGE_MEMO_SIZE))
    lock: threading.Lock = field(default_factory=threading.Lock)


def always(values: dict[str, Any]) -> bool:
    return True


def declare_page(
    app: Flask, endpoint: str, exists: PageCheck = always, *, every_edition: bool = False
) -> None:
    """A page readers can read, in every edition; ``every_edition`` when it is the same page
    in each language (see ``editions.declare_edition_endpoint``)."""
    app.extensions.setdefault("pages", {})[endpoint] = exists
    declare_edition_endpoint(app, endpoint, every_edition=every_edition)


def page_exists(path: str) -> bool:
    """True when ``path`` is a declared page and that page exists (see ``PageMemo``)."""
    memo: PageMemo = current_app.extensions.setdefault("page_memo", PageMemo())
    version = content_version()
    with memo.lock:
        if memo.version != version:
            memo.known.clear()
            memo.version = version
        known = memo.known.get(path)
    if known is not None:
        return known
    exists = checked_page_exists(path)
    with memo.lock:
        if memo.version == version:
            memo.known[path] = exists
    return exists


def content_version() -> object:
    """The content version pages are cached under, read at most every
    ``CONTENT_CHECK_SECONDS`` (``pagecache.ContentVersion``)."""
    return current_app.extensions["page_cache"].content_version.current()


def checked_page_exists(path: str) -> bool:
    try:
        endpoint, values = current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return False
    exists = current_app.extensions.get("pages", {}).get(endpoint)
    return exists is not None and exists(values)
