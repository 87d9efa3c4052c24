"""Response headers as Werkzeug reads them, each distinct value read once per process.

Every page passes the consent step and the page cache, which ask whether ``Cache-Control``
forbids storing and what ``Vary`` names. Werkzeug's parsers answer both; a site sends a
handful of distinct values, so each is parsed once (``functools.lru_cache``, bounded).
"""

from __future__ import annotations

from functools import lru_cache

from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import parse_cache_control_header, parse_set_header

DISTINCT_VALUES = 256


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
