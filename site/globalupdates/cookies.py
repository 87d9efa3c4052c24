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

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.http import parse_cookie

PARSED = "globalupdates.cookies"
NAME_AT_START = re.compile(r"(?:^|[;,])\s*([^=;,\s]+)\s*=")

Environ = Mapping[str, Any]


def request_cookies(environ: Environ) -> ImmutableMultiDict[str, str]:
    """Every cookie the request sent, parsed once per request; ``.get(name)`` is the first."""
    parsed = environ.get(PARSED)
    if not isinstance(parsed, ImmutableMultiDict):
        parsed = ImmutableMultiDict(parse_cookie(environ.get("HTTP_COOKIE")))
        if isinstance(environ, dict):
            environ[PARSED] = parsed
    return parsed


def occurrences(environ: Environ, name: str) -> int:
    """How many times a cookie of this name, in any letter case, appears in the raw header.

    Commas count as separators too: a proxy or server that joins two ``Cookie`` lines with a
    comma must not hide a second copy.
    """
    header = environ.get("HTTP_COOKIE") or ""
    wanted = name.lower()
    return sum(1 for found in NAME_AT_START.findall(header) if found.lower() == wanted)


class SiteRequest(Request):
    """Flask's request, reading cookies through ``request_cookies``."""

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        return request_cookies(self.environ)
