"""Where the reader is, as the edge in front of the site says: the regime of their place.

The country (and subdivision) come only from the headers ``COUNTRY_HEADER`` and
``REGION_HEADER`` name, and only when the site is set to trust a proxy (the ``PROXY_FIX_*``
settings): a site reached directly must not let a reader pick their own regime. Anything
else (no header, an unknown country, Cloudflare's ``XX`` and ``T1``) is opt-in, the strictest.
The same function serves Flask and the kept responses in front of it, so both layers put a
reader under the same regime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ... import proxy
from ..model.regions import STRICTEST, Regime, Regions


@dataclass(frozen=True)
class PlaceHeaders:
    """The environ keys of the trusted place headers (None when the site reads none), and
    their names as a response's ``Vary`` gives them."""

    country: str | None = None
    subdivision: str | None = None
    names: tuple[str, ...] = ()


def environ_key(header: str | None) -> str | None:
    if not header:
        return None
    return "HTTP_" + header.strip().upper().replace("-", "_")


def place_headers(app: Flask) -> PlaceHeaders:
    """The headers to read, from the settings; none unless a proxy is trusted (said once in
    the log, since the operator asked for a header the site will not read)."""
    country = app.config.get("COUNTRY_HEADER") or None
    subdivision = app.config.get("REGION_HEADER") or None
    if not country:
        if subdivision:
            app.logger.warning("REGION_HEADER is set without COUNTRY_HEADER: it is not read")
        return PlaceHeaders()
    if not proxy.trusts_proxy(app):
        app.logger.warning(
            "COUNTRY_HEADER is set but no proxy is trusted (PROXY_FIX_*): every reader is "
            "opt-in, since a client could send the header itself"
        )
        return PlaceHeaders()
    names = tuple(str(name).strip() for name in (country, subdivision) if name)
    return PlaceHeaders(environ_key(str(country)), environ_key(subdivision), names)


def reader_regime(regions: Regions, headers: PlaceHeaders, environ: Mapping[str, Any]) -> Regime:
    if headers.country is None:
        return STRICTEST
    country = environ.get(headers.country)
    subdivision = environ.get(headers.subdivision) if headers.subdivision else None
    return regions.regime_of(
        country if isinstance(country, str) else None,
        subdivision if isinstance(subdivision, str) else None,
    )
