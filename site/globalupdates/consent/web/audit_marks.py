"""What the cookie audit (``flask consent audit``) asks of the site, believed only from the
addresses in ``CONSENT_AUDIT_ALLOWED`` (as the site sees them, after ``ProxyFix``).

The audit reaches each reader state by making real choices, which the chain records like any
other. It sends ``X-Consent-Audit: 1`` with them, so that the figures leave them out; from
anywhere else the mark is ignored, so a reader cannot hide their choices from the figures,
nor make their choice count less.

It visits as each regime the registry has by naming it in ``X-Consent-Audit-Regime``
(``opt-in``, ``opt-out``): the regime then decides the reader's state for that request in
place of the edge's place headers, so the audit sees what a reader of that regime would, and
a choice it makes records that regime. Such a response is never stored by any cache: the
kept responses pass every request carrying the header to Flask (they run before ``ProxyFix``
and cannot tell the address), the page cache neither answers nor keeps it, and the response
says ``no-store`` to browsers and nginx. From anywhere else the header is ignored and logged,
so no reader can pick their own regime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, g, request

from ...logs import truncated_address
from ...metrics.instruments import AUDIT_REGIME_REQUESTS
from ...metrics.views import Network, allowed_networks, is_allowed
from ..model.regions import Regime
from ..model.registry import Registry

AUDIT_HEADER = "X-Consent-Audit"
AUDIT_REGIME_HEADER = "X-Consent-Audit-Regime"
AUDIT_REGIME_ENVIRON = "HTTP_X_CONSENT_AUDIT_REGIME"
ALLOWED = "consent_audit_allowed_networks"
DECIDED = "consent_audit_regime"  # on flask.g: this request's honoured regime, or None


def init_app(app: Flask) -> None:
    app.extensions[ALLOWED] = allowed_networks(
        app.config.get("CONSENT_AUDIT_ALLOWED"), "CONSENT_AUDIT_ALLOWED"
    )


def audit_networks() -> tuple[Network, ...]:
    return current_app.extensions.get(ALLOWED, ())


def is_audit_choice() -> bool:
    """True when this choice carries the audit's mark from an allowed address; a mark from
    anywhere else is ignored (and logged: someone tries to keep choices out of the figures)."""
    if request.headers.get(AUDIT_HEADER, "").strip() != "1":
        return False
    if is_allowed(request.remote_addr, audit_networks()):
        current_app.logger.info("consent choice marked as the cookie audit's")
        return True
    current_app.logger.warning(
        "%s ignored: %s is not in CONSENT_AUDIT_ALLOWED",
        AUDIT_HEADER,
        truncated_address(request.remote_addr),
    )
    return False


def carries_audit_regime(environ: Mapping[str, Any]) -> bool:
    """Whether a request names an audit regime at all, honoured or not: what the layers that
    cannot check the address go by."""
    return AUDIT_REGIME_ENVIRON in environ


def audit_regime() -> Regime | None:
    """The regime this request's reader is under because the audit named it, or None (the
    edge's place decides). Decided once per request."""
    if DECIDED not in g:
        setattr(g, DECIDED, requested_audit_regime(current_app.extensions["consent"].registry))
    return getattr(g, DECIDED)


def requested_audit_regime(registry: Registry) -> Regime | None:
    asked = request.headers.get(AUDIT_REGIME_HEADER)
    if asked is None:
        return None
    if not is_allowed(request.remote_addr, audit_networks()):
        ignored(
            "%s ignored: %s is not in CONSENT_AUDIT_ALLOWED",
            AUDIT_REGIME_HEADER,
            truncated_address(request.remote_addr),
        )
        return None
    offered = {regime.name: regime for regime in registry.regions.regimes}
    regime = offered.get(asked.strip().lower())
    if regime is None:
        ignored(
            "%s ignored: %r is none of the registry's regimes (%s)",
            AUDIT_REGIME_HEADER,
            asked[:16],
            ", ".join(offered),
        )
        return None
    AUDIT_REGIME_REQUESTS.labels("yes").inc()
    current_app.logger.info("the cookie audit visits as the %s regime", regime.name)
    return regime


def ignored(message: str, *values: object) -> None:
    AUDIT_REGIME_REQUESTS.labels("no").inc()
    current_app.logger.warning(message, *values)
