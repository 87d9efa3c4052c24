"""The variant cookie: the reader's choice as a shared cache may key their pages on.

Pages are the same for every reader who made the same choice, so nginx (or a CDN) can keep a
returning reader's page under the choice instead of under the reader, if it can tell the choice
without reading the signed session. The site sets this cookie beside the session whenever a
choice is made or revised, and on any response to a reader whose copy is missing or wrong; it
expires it once the reader has no current choice.

The value is opaque and versioned: the format, the registry's revision and a digest of what the
choice grants (its categories and the services inside them, whether it was made under GPC,
and which categories it has on only by an opt-out default), so every reader who chose alike
shares it and a new revision never meets an old value. It is HttpOnly, lives exactly as long
as the choice, and over HTTPS is named ``__Host-gu_variant`` with ``Secure``: no sibling
subdomain and no plain-HTTP page can plant one. A forged value can only ever reach the forger's
own browser:
the site marks a response storable only when the value is the one the verified session gives
(``sharedcache``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, request

from ...cookies import occurrences, request_cookies
from .choice import ConsentState, StoredChoice

Environ = Mapping[str, Any]
VARIANT_COOKIE = "gu_variant"
SECURE_PREFIX = "__Host-"
VALUE_FORMAT = "2"  # 2: the digest covers the granted services


def variant_cookie_name(name: str, secure: bool) -> str:
    """The cookie's name on this scheme: with the ``__Host-`` prefix over HTTPS."""
    return SECURE_PREFIX + name if secure else name


def variant_value(choice: StoredChoice, revision: int) -> str:
    """Categories on only by an opt-out default make a variant of their own: in an opt-in
    place such a reader is asked again, where a reader who granted the same is not."""
    granted = ",".join(sorted(choice.categories))
    services = ",".join(sorted(choice.services or ()))
    chosen = f"{granted}|{services}|{int(choice.gpc)}"
    if choice.defaulted:
        chosen += "|defaulted=" + ",".join(sorted(choice.defaulted))
    digest = hashlib.blake2b(chosen.encode(), digest_size=10)
    return f"{VALUE_FORMAT}.{revision}.{digest.hexdigest()}"


def expected_variant(state: ConsentState, app: Flask) -> str | None:
    """The value the reader's current choice gives; None without one."""
    if state.choice is None:
        return None
    return variant_value(state.choice, app.extensions["consent"].registry.revision)


def remaining_seconds(choice: StoredChoice, app: Flask) -> int:
    ends = choice.made_at + app.extensions["consent"].lifetime
    return max(1, int((ends - datetime.now(UTC)).total_seconds()))


def keep_variant_cookie_right(response: Response, state: ConsentState) -> None:
    """Set the variant cookie where it is missing, wrong or sent more than once (in any letter
    case); expire it where the reader has no current choice."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    secure = request.is_secure
    name = variant_cookie_name(VARIANT_COOKIE, secure)
    cookies = request_cookies(request.environ)
    expected = expected_variant(state, app)
    if expected is None:
        if occurrences(request.environ, name):
            forget(response, name, secure)
        return
    if is_right(request.environ, cookies, name, expected):
        return
    assert state.choice is not None
    response.set_cookie(
        name,
        expected,
        max_age=remaining_seconds(state.choice, app),
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def is_right(environ: Environ, cookies: Mapping[str, str], name: str, expected: str) -> bool:
    """The variant cookie holds the expected value and no other copy of it was sent."""
    return cookies.get(name) == expected and occurrences(environ, name) == 1


def is_settled(
    app: Flask, environ: Environ, cookies: Mapping[str, str], state: ConsentState
) -> bool:
    """True when a response to this request would not touch the variant cookie: it is right
    for the reader's current choice, or absent when there is none."""
    name = variant_cookie_name(VARIANT_COOKIE, environ.get("wsgi.url_scheme") == "https")
    expected = expected_variant(state, app)
    if expected is None:
        return occurrences(environ, name) == 0
    return is_right(environ, cookies, name, expected)


def forget(response: Response, name: str, secure: bool) -> None:
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
