"""HTTP headers as Werkzeug reads them, each distinct value read once per process.

Every page passes the consent step and the page cache, which ask whether ``Cache-Control``
forbids storing and what ``Vary`` names, and every revalidation asks whether
``If-None-Match`` names the page's ETag. Werkzeug answers all three; the values repeat (a
site sends a handful of policies, and the readers of one page variant revalidate the same
ETag), so each is worked out once (``functools.lru_cache``, bounded in entries).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import is_resource_modified, parse_cache_control_header, parse_set_header

DISTINCT_VALUES = 256
DISTINCT_VALIDATORS = 4096


@lru_cache(maxsize=DISTINCT_VALUES)
def forbids_storing(cache_control: str | None) -> bool:
    """Whether a response's ``Cache-Control`` says ``no-store``. Directive names compare in
    any letter case (RFC 9111, 5.2), which Werkzeug's parser leaves to its caller."""
    lowered = cache_control.lower() if cache_control else cache_control
    return bool(parse_cache_control_header(lowered, cls=ResponseCacheControl).no_store)


@lru_cache(maxsize=DISTINCT_VALUES)
def varies_on(vary: str | None, names: tuple[str, ...]) -> bool:
    """Whether a response's ``Vary`` names every header of ``names`` (in any letter case)."""
    listed = parse_set_header(vary)
    return all(name in listed for name in names)


def not_modified(environ: Mapping[str, Any], etag: str) -> bool:
    """Whether a GET may be answered ``304`` for a response with this (unquoted) ETag: what
    Werkzeug's ``is_resource_modified`` says, ``If-Range`` ignored as for a whole response."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is None:
        return False
    return validator_matches(if_none_match, environ.get("HTTP_IF_MATCH"), etag)


@lru_cache(maxsize=DISTINCT_VALIDATORS)
def validator_matches(if_none_match: str, if_match: str | None, etag: str) -> bool:
    """``is_resource_modified`` for the two headers that decide it when a response has an
    ETag and no date (``If-None-Match``, weak comparison and ``*``; ``If-Match``), once per
    distinct pair and ETag."""
    environ = {"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": if_none_match}
    if if_match is not None:
        environ["HTTP_IF_MATCH"] = if_match
    return not is_resource_modified(environ, etag=etag, ignore_if_range=True)
