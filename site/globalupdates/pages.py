"""Which paths are pages a reader can read.

Each package declares its page endpoints, with a check of whether a page exists for the values
in a path, so that something that counts pages (the page-view beacon) counts only real ones:
not a health check, a feed, or an article that was never published.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from werkzeug.exceptions import HTTPException

from .editions import declare_edition_endpoint

PageCheck = Callable[[dict[str, Any]], bool]


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
    """True when ``path`` is a declared page and that page exists."""
    try:
        endpoint, values = current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return False
    exists = current_app.extensions.get("pages", {}).get(endpoint)
    return exists is not None and exists(values)
