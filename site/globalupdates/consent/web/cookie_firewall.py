"""The cookie firewall: no Set-Cookie leaves the site unless the registry declares the cookie
and the reader granted its category (and, for a service's cookie, that service). Expiring a
declared cookie is always allowed, since that is how a withdrawn category's cookies are
cleared."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, current_app, request
from werkzeug.http import parse_date

from ..model.choice import ConsentState
from ..model.registry import Registry


def cookie_name(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[0].strip()


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in set_cookie.split(";")[1:]:
        key, _, value = part.partition("=")
        attributes[key.strip().lower()] = value.strip()
    return attributes


def expires_cookie(set_cookie: str) -> bool:
    """True when the header deletes the cookie rather than storing it."""
    attributes = cookie_attributes(set_cookie)
    max_age = attributes.get("max-age")
    if max_age is not None:
        try:
            return int(max_age) <= 0
        except ValueError:
            return False
    expires = parse_date(attributes.get("expires"))
    return expires is not None and expires <= datetime.now(UTC)


def refusal(set_cookie: str, state: ConsentState, registry: Registry) -> str | None:
    """Why this Set-Cookie may not leave, or None when it may."""
    name = cookie_name(set_cookie)
    found = registry.find_cookie_owner(name)
    if found is None:
        return "it is not declared in the consent registry"
    category, service, _cookie = found
    if state.allows_cookie_of(category.key, service) or expires_cookie(set_cookie):
        return None
    if service is not None:
        return f"the reader has not granted the service {service.key} of {category.key}"
    return f"the reader has not granted {category.key}"


def strip_forbidden_cookies(response: Response, state: ConsentState, registry: Registry) -> None:
    headers = response.headers.getlist("Set-Cookie")
    if not headers:
        return
    kept = []
    for header in headers:
        reason = refusal(header, state, registry)
        if reason is None:
            kept.append(header)
            continue
        current_app.logger.warning(
            "cookie firewall: removed Set-Cookie %r on route %s (%s %s): %s",
            cookie_name(header),
            request.url_rule.rule if request.url_rule else "(no route)",
            request.method,
            request.path,
            reason,
        )
    if len(kept) == len(headers):
        return
    del response.headers["Set-Cookie"]
    for header in kept:
        response.headers.add("Set-Cookie", header)
