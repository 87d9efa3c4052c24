"""Counting requests: by endpoint group, method and status, their latency, and the layer that
answered (``LAYER``: ``kept``, ``page_cache`` or ``render``).

Flask's requests are timed by two steps of ``pipeline``, the first before the view and the last
after it; the kept responses in front of Flask count their own answers (``count_answer``).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from flask import Response, request

from .instruments import HTTP_DURATION, HTTP_REQUESTS, RESPONSES

LAYER = "globalupdates.layer"
GROUP = "globalupdates.group"
STARTED = "globalupdates.started"
KEPT, PAGE_CACHE, RENDER = "kept", "page_cache", "render"

BLUEPRINT_GROUPS = {
    "articles": "page",
    "consent": "consent",
    "gpc": "consent",
    "csp_reports": "beacon",
    "feeds": "feed",
    "health": "health",
    "metrics": "metrics",
}
ENDPOINT_GROUPS = {
    "articles.search_page": "search",
    "articles.show_embed_once": "consent",
    "consent.cookie_policy": "page",
    "consent.privacy_notice": "page",
    "features.record_page_view": "beacon",
    "features.record_timing": "beacon",
    "features.house_ad": "page",
    "features.choose_text_size": "reader_settings",
    "features.erase_reading_data": "reader_settings",
    "static": "static",
}


def endpoint_group(endpoint: str | None) -> str:
    """The group an endpoint's requests are counted in; ``other`` for no route (a 404)."""
    if endpoint is None:
        return "other"
    if endpoint in ENDPOINT_GROUPS:
        return ENDPOINT_GROUPS[endpoint]
    return BLUEPRINT_GROUPS.get(endpoint.partition(".")[0], "other")


def count_answer(
    environ: MutableMapping[str, Any], group: str, status: int, started: float
) -> None:
    method = environ.get("REQUEST_METHOD", "")
    HTTP_REQUESTS.labels(group, method if method in COUNTED_METHODS else "other", status).inc()
    HTTP_DURATION.labels(group).observe(time.perf_counter() - started)
    RESPONSES.labels(environ.get(LAYER, RENDER)).inc()


COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


def start_timing() -> None:
    """The first step before the view: note when the request reached Flask, and that it is
    rendered unless a cache answers it."""
    environ = request.environ
    environ.setdefault(STARTED, time.perf_counter())
    environ.setdefault(LAYER, RENDER)


def count_request(response: Response) -> Response:
    """The last step after the view: count the request with the status it leaves with."""
    environ = request.environ
    started = environ.get(STARTED)
    if started is not None:
        group = endpoint_group(request.endpoint)
        environ[GROUP] = group
        count_answer(environ, group, response.status_code, started)
    return response
