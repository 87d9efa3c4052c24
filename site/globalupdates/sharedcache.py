"""What caches outside the site (nginx, a CDN) may store of a returning reader's page.

A returning reader's page is the page of their variant, the same for every reader who made the
same choice, so a shared cache can keep it under a key that names the variant instead of the
reader: the variant cookie the engine sets beside the session (``consent.model.variant_cookie``),
the cookies whose values change a page (the text size), and whether each of the site's other
cookies was sent (a page to a reader who holds a cookie they did not grant clears it, and
must never come from a cache).

Anyone can forge a cookie, so the site decides per response whether a cache may store it, and
only when it verified every part of the cache's key on that very request: the cache passes the
cookie part of the key it built in a request header (``X-Cache-Key-Cookies`` from
``deploy/nginx.conf``; ``CDN_CACHE_KEY_HEADER`` for a CDN), and the site compares it with the
same part built from its own reading of the cookies, whose variant must be the one the verified
session gives. Each cookie the key names must appear once at most, in any letter case. The rest
of the key (scheme, host, URI, GPC, gzip, the bare ``/``'s negotiation) is what nginx passes
as headers or in the request line itself.

Browsers always get ``Cache-Control: private``; nginx alone is told it may store
(``X-Accel-Expires``, which nginx never passes on), and a CDN only through
``CDN-Cache-Control`` when its own key header was verified. A response that sets a cookie is
never storable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response

from .consent.model.choice import ConsentState
from .consent.model.variant_cookie import SECURE_PREFIX, expected_variant, variant_cookie_name
from .cookies import occurrences

Environ = Mapping[str, Any]
Cookies = Mapping[str, str]
PROXY_KEY_HEADER = "X-Cache-Key-Cookies"
PROXY_REGIME_HEADER = "X-Cache-Key-Regime"
PROXY_EXPIRES_HEADER = "X-Accel-Expires"
CDN_CONTROL_HEADER = "CDN-Cache-Control"


@dataclass(frozen=True)
class Verdict:
    """What a response to this request may tell caches: whether a session cookie came with
    it, whether the proxy's and the CDN's keys were verified for this reader, and whether
    the regime a proxy keyed on (if it said) is the reader's."""

    session_sent: bool
    proxy_key_verified: bool
    cdn_key_verified: bool
    regime_agrees: bool = True


@dataclass(frozen=True)
class CookieKey:
    """The cookies a shared cache keys a returning reader's page on, in the order it writes
    them: ``v=<variant>|<name>=<value>...|<name>=<0 or 1>...``."""

    session: str
    variant: str
    values: tuple[str, ...]
    flags: tuple[str, ...]

    def names(self, secure: bool) -> tuple[str, ...]:
        return (variant_cookie_name(self.variant, secure), *self.values, *self.flags)

    def read(self, environ: Environ, cookies: Cookies, secure: bool) -> str | None:
        """The key's cookie part as the site reads the request; None when one of its cookies
        appears more than once, so a cache reading another copy can never agree with it."""
        names = self.names(secure)
        if any(occurrences(environ, name) > 1 for name in names):
            return None
        parts = [f"v={cookies.get(names[0], '')}"]
        parts += [f"{name}={cookies.get(name, '')}" for name in self.values]
        parts += [f"{name}={int(name in cookies)}" for name in self.flags]
        return "|".join(parts)


@dataclass(frozen=True)
class SharedCacheState:
    cookie_key: CookieKey
    max_age: int
    cdn_header: str | None
    reads_place: bool = False


def init_app(
    app: Flask,
    *,
    session_cookie: str,
    variant_cookie: str,
    value_cookies: frozenset[str],
    flag_cookies: frozenset[str],
    reads_place: bool = False,
) -> None:
    cdn_header = app.config.get("CDN_CACHE_KEY_HEADER") or None
    app.extensions["shared_cache"] = SharedCacheState(
        cookie_key=CookieKey(
            session=session_cookie,
            variant=variant_cookie,
            values=tuple(sorted(value_cookies)),
            flags=tuple(sorted(flag_cookies - value_cookies - {session_cookie, variant_cookie})),
        ),
        max_age=int(app.config["SHARED_PAGE_MAX_AGE"]),
        cdn_header=str(cdn_header) if cdn_header else None,
        reads_place=reads_place,
    )


def state_of(app: Flask) -> SharedCacheState:
    return app.extensions["shared_cache"]


def own_cookie_names(app: Flask) -> frozenset[str]:
    """The session cookie and the variant cookie under both its names: the cookies whose
    state the verdict and the variant already stand for."""
    key = state_of(app).cookie_key
    return frozenset({key.session, key.variant, SECURE_PREFIX + key.variant})


def is_secure(environ: Environ) -> bool:
    return environ.get("wsgi.url_scheme") == "https"


def key_verified(
    app: Flask, environ: Environ, cookies: Cookies, state: ConsentState, sent: str | None
) -> bool:
    """True when ``sent`` (the cookie part of a cache's key, as the cache passed it) is the
    site's own reading of this request and names the variant the verified choice gives."""
    if sent is None or state.gpc_revised is not None:
        return False
    variant = expected_variant(state, app)
    if variant is None:
        return False
    key = state_of(app).cookie_key
    secure = is_secure(environ)
    ours = key.read(environ, cookies, secure)
    return (
        ours is not None
        and sent == ours
        and cookies.get(variant_cookie_name(key.variant, secure)) == variant
    )


def header_value(environ: Environ, name: str) -> str | None:
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return value if isinstance(value, str) else None


def verdict(app: Flask, environ: Environ, cookies: Cookies, state: ConsentState) -> Verdict:
    """What caches may be told for this request, before the response is known (a response
    that sets a cookie is then told nothing more: see ``tell_caches``)."""
    shared = state_of(app)
    key = shared.cookie_key
    regime_sent = header_value(environ, PROXY_REGIME_HEADER)
    regime_agrees = regime_sent is None or regime_sent == state.regime
    proxy = regime_agrees and key_verified(
        app, environ, cookies, state, header_value(environ, PROXY_KEY_HEADER)
    )
    cdn = (
        shared.cdn_header is not None
        and not shared.reads_place
        and key_verified(app, environ, cookies, state, header_value(environ, shared.cdn_header))
    )
    return Verdict(
        session_sent=key.session in cookies,
        proxy_key_verified=proxy,
        cdn_key_verified=cdn,
        regime_agrees=regime_agrees,
    )


def tell_caches(app: Flask, response: Response, verdict: Verdict) -> None:
    """Mark a returning reader's shared page storable for the caches whose key was verified.

    ``X-Accel-Expires`` goes before ``Cache-Control``: nginx before 1.23 reads the headers in
    order, and a ``private`` it read first would stop the store.
    """
    if "Set-Cookie" in response.headers:
        return
    max_age = state_of(app).max_age
    control = response.headers.get("Cache-Control")
    if verdict.proxy_key_verified:
        del response.headers["Cache-Control"]
        response.headers[PROXY_EXPIRES_HEADER] = str(max_age)
        if control is not None:
            response.headers["Cache-Control"] = control
    if verdict.cdn_key_verified:
        response.headers[CDN_CONTROL_HEADER] = f"public, max-age={max_age}"
