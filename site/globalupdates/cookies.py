"""The one reading of a request's ``Cookie`` header, shared by every layer that looks at it.

The layer in front of Flask, Flask's own ``request.cookies``, the session and the check of
what a proxy keyed a page on all ask this module, so a header that names a cookie twice has
one answer everywhere: the first value, as Werkzeug reads it (and as nginx's ``$cookie_``
variables and browsers' own ordering, longest path first, mean it). The header is parsed once
per request and the result kept in the WSGI environ.

Two cookies whose names differ only in letter case are two cookies to a browser and to
Werkzeug, but one to nginx's ``$cookie_`` variables. ``occurrences`` counts a name in any
case, so a layer that must agree with such a reader can refuse the ambiguity instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import cached_property
from typing import Any, cast

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.sansio.http import parse_cookie

PARSED = "globalupdates.cookies"
NAME_COUNTS = "globalupdates.cookie_name_counts"

Environ = Mapping[str, Any]


def request_cookies(environ: Environ) -> ImmutableMultiDict[str, str]:
    """Every cookie the request sent, parsed once per request; ``.get(name)`` is the first."""
    parsed = environ.get(PARSED)
    if not isinstance(parsed, ImmutableMultiDict):
        parsed = cast(
            ImmutableMultiDict[str, str],
            parse_cookie(environ.get("HTTP_COOKIE"), cls=ImmutableMultiDict),
        )
        if isinstance(environ, dict):
            environ[PARSED] = parsed
    return parsed


def occurrences(environ: Environ, name: str) -> int:
    """How many times a cookie of this name, in any letter case, appears in the raw header.

    Commas count as separators too: a proxy or server that joins two ``Cookie`` lines with a
    comma must not hide a second copy.
    """
    counts = environ.get(NAME_COUNTS)
    if not isinstance(counts, Counter):
        counts = Counter(
            part.split("=", 1)[0].strip().lower()
            for part in (environ.get("HTTP_COOKIE") or "").replace(",", ";").split(";")
            if "=" in part
        )
        if isinstance(environ, dict):
            environ[NAME_COUNTS] = counts
    return counts[name.lower()]


class SiteRequest(Request):
    """Flask's request, reading cookies through ``request_cookies``."""

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        return request_cookies(self.environ)
