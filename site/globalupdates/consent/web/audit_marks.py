"""Which choices the cookie audit (``flask consent audit``) makes, so the figures leave them out.

The audit reaches each reader state by making real choices, which the chain records like any
other. It sends ``X-Consent-Audit: 1`` with them; the site believes the header only from the
addresses in ``CONSENT_AUDIT_ALLOWED`` (as it sees them, after ``ProxyFix``), so a reader
elsewhere cannot hide their choices from the figures, nor make their choice count less.
"""

from __future__ import annotations

from flask import Flask, current_app, request

from ...logs import truncated_address
from ...metrics.views import Network, allowed_networks, is_allowed

AUDIT_HEADER = "X-Consent-Audit"
ALLOWED = "consent_audit_allowed_networks"


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
