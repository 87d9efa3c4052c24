"""Cross-site request forgery protection from Fetch Metadata, with no token in any page.

A browser tells the site where an unsafe request comes from: ``Sec-Fetch-Site`` on every
potentially trustworthy origin (HTTPS, localhost), and ``Origin`` on every form post and
fetch. A request that carries neither did not come from a browser, so it cannot ride a
reader's cookies, and passes. Because no token is needed, no page needs a session before the
reader's choice, and every page can be the same for every reader who made the same choice.

The rule follows Go's ``net/http.CrossOriginProtection`` and Rails' header-based forgery
protection: ``same-origin`` and ``none`` pass; any other ``Sec-Fetch-Site`` is refused;
without it, an ``Origin`` naming another host (or ``null``) is refused. Origins the
operator trusts (``TRUSTED_ORIGINS``) pass either way. Behind a proxy the request's host
comes from ``ProxyFix``, so the comparison sees the host the reader's browser used.

Some browsers send a form post with neither header, but with a ``Referer``: one naming
another origin (scheme, host and port), or one that cannot be read as an address, is refused
too. A request with none of the three still passes: a client that is not a browser, or a page
that suppresses its ``Referer``, cannot be told apart from a forgery by a browser that sends
nothing, and that limit is stated in the operations guide.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from flask_babel import lazy_gettext
from werkzeug.exceptions import Forbidden

from .metrics.instruments import FORGERY_REFUSALS

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PASSING_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}
REFUSAL = lazy_gettext(
    "Nothing was changed: this request came from another site, and this site only accepts "
    "changes sent from its own pages."
)


class CrossOriginRequest(Forbidden):
    description = REFUSAL


def trusted_origins(value: str | Iterable[str] | None) -> frozenset[str]:
    """``TRUSTED_ORIGINS`` as a set of ``scheme://host[:port]``, from a list or from a
    comma-separated string (as ``FLASK_TRUSTED_ORIGINS`` gives it)."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    origins = set()
    for item in items:
        origin = str(item).strip().rstrip("/").lower()
        if not origin:
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(
                f"TRUSTED_ORIGINS: {item!r} is not an origin such as https://a.example"
            )
        origins.add(origin)
    return frozenset(origins)


def exempt(app: Flask, blueprint_name: str) -> None:
    """Let a blueprint take unsafe requests from anywhere: only for endpoints that change
    nothing a reader owns, such as the sink for the browser's own CSP violation reports."""
    app.extensions.setdefault("forgery_exempt", set()).add(blueprint_name)


def refusal_reason() -> str | None:
    """Why this request may not change anything, or None when it may."""
    if request.method in SAFE_METHODS:
        return None
    if request.blueprint in current_app.extensions.get("forgery_exempt", ()):
        return None
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() in current_app.extensions["trusted_origins"]:
        return None
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site in PASSING_FETCH_SITES:
            return None
        return f"Sec-Fetch-Site is {fetch_site[:40]!r}"
    if origin is None:
        return referer_reason(request.headers.get("Referer"))
    if origin == "null":
        return "Origin is null"
    if origin_host(origin) != request.host.lower():
        return f"Origin {origin[:100]!r} is not this site ({request.host[:100]})"
    return None


def origin_host(origin: str) -> str | None:
    """The host (and port) an ``Origin`` names; None for one that cannot be read."""
    try:
        return urlsplit(origin).netloc.lower()
    except ValueError:
        return None


def referer_reason(referer: str | None) -> str | None:
    """Why a request with neither ``Origin`` nor ``Sec-Fetch-Site`` is refused for its
    ``Referer``, or None when it names this site's origin (or is absent)."""
    if referer is None or not referer.strip():
        return None
    page_origin = url_origin(referer)
    if page_origin is None:
        return f"Referer {referer[:100]!r} is not an address"
    if page_origin in current_app.extensions["trusted_origins"]:
        return None
    if page_origin != url_origin(f"{request.scheme}://{request.host}"):
        return f"Referer {referer[:100]!r} is not this site ({request.host[:100]})"
    return None


def url_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) address, lowercased, the port left out when it
    is the scheme's default; None for anything that cannot be read as one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return (
        f"{scheme}://{host}"
        if port in (None, DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def refuse_cross_origin_requests() -> None:
    reason = refusal_reason()
    if reason is None:
        return
    g.cross_origin_refused = True
    FORGERY_REFUSALS.inc()
    current_app.logger.info(
        "refused a cross-origin %s %s: %s", request.method, request.path[:200], reason
    )
    raise CrossOriginRequest()


def was_refused() -> bool:
    return bool(g.get("cross_origin_refused"))


def init_app(app: Flask) -> None:
    """``refuse_cross_origin_requests`` is the first step of ``pipeline.BEFORE_VIEW``, so a
    refused request reaches nothing that writes: no rate-limit counter, no consent record, no
    session."""
    app.extensions["trusted_origins"] = trusted_origins(app.config.get("TRUSTED_ORIGINS"))
    app.extensions.setdefault("forgery_exempt", set())
