"""Rate limits on the endpoints that write: the consent form and the features' beacons.

Each limited endpoint has two limits: a tight one per reader (keyed by the reader's session,
so that everyone behind one office or carrier address has their own allowance) and a
generous ceiling per network address. Limits come from config, so load tests can raise them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from flask import Blueprint, Flask, current_app, request
from flask_babel import lazy_gettext

from .consent import current_consent
from .consent import reports as csp_reports
from .consent import views as consent_views
from .extensions import limiter
from .features import views as feature_views
from .forgery import SAFE_METHODS

# Callables, so that Flask-Limiter puts each refusal in the reader's language when it is made;
# one object each, so that every app sees the same limit and none is stacked.
CONSENT_MESSAGE = partial(
    str,
    lazy_gettext(
        "Too many cookie choices were sent from this browser in a short time, so this one was "
        "not saved. Please wait a minute and try again."
    ),
)
BEACON_MESSAGE = partial(
    str, lazy_gettext("Too many requests from this page in a short time; please slow down.")
)
REPORT_MESSAGE = partial(
    str, lazy_gettext("Too many CSP reports from this address; they are being dropped for a while.")
)


def reader_key() -> str:
    """The reader's consent id: the per-reader limit applies only to a reader who has one."""
    return f"reader:{current_consent().consent_id}"


def reader_unknown() -> bool:
    """Before a first choice there is no session (nothing is stored before the reader
    chooses), so readers cannot be told apart: many of them behind one office or carrier
    address must not share one reader's allowance. Only the per-address ceiling applies."""
    return current_consent().consent_id is None


def address_key() -> str:
    return f"address:{request.remote_addr or 'unknown'}"


def configured(name: str) -> Callable[[], str]:
    """A limit read from config on each request, so tests and operators can change it."""

    def provider() -> str:
        return str(current_app.config[name])

    provider.__name__ = f"limit_{name.lower()}"
    return provider


LIMIT_PROVIDERS = {
    name: configured(name)
    for name in (
        "RATELIMIT_CONSENT_PER_READER",
        "RATELIMIT_CONSENT_PER_ADDRESS",
        "RATELIMIT_BEACON_PER_READER",
        "RATELIMIT_BEACON_PER_ADDRESS",
        "RATELIMIT_CSP_REPORT_PER_ADDRESS",
    )
}


def limit_posts(
    blueprint: Blueprint, per_reader: str | None, per_address: str, message: Callable[[], str]
):
    """Limit every POST of a blueprint. The same provider objects are used for every app,
    so Flask-Limiter sees the same limit each time and does not stack copies of it."""
    if per_reader is not None:
        limiter.limit(
            LIMIT_PROVIDERS[per_reader],
            key_func=reader_key,
            exempt_when=reader_unknown,
            methods=["POST"],
            error_message=message,
        )(blueprint)
    limiter.limit(
        LIMIT_PROVIDERS[per_address], key_func=address_key, methods=["POST"], error_message=message
    )(blueprint)


def check_limits_of_unsafe_requests() -> None:
    """Every limit here is on POST, so a GET or HEAD skips Flask-Limiter's per-request
    resolution of limits, which cost as much as serving a cached page."""
    if request.method not in SAFE_METHODS:
        limiter._check_request_limit()


def check_only_unsafe_requests(app: Flask) -> None:
    hooks = app.before_request_funcs.setdefault(None, [])
    for index, hook in enumerate(hooks):
        if hook == limiter._check_request_limit:
            hooks[index] = check_limits_of_unsafe_requests


def init_app(app: Flask) -> None:
    # Flask-Limiter keeps the first app's key prefix on its shared instance; take this app's.
    limiter._key_prefix = app.config.get("RATELIMIT_KEY_PREFIX", "")
    limiter.init_app(app)
    check_only_unsafe_requests(app)
    limit_posts(
        consent_views.bp,
        "RATELIMIT_CONSENT_PER_READER",
        "RATELIMIT_CONSENT_PER_ADDRESS",
        CONSENT_MESSAGE,
    )
    limit_posts(
        feature_views.bp,
        "RATELIMIT_BEACON_PER_READER",
        "RATELIMIT_BEACON_PER_ADDRESS",
        BEACON_MESSAGE,
    )
    limit_posts(csp_reports.bp, None, "RATELIMIT_CSP_REPORT_PER_ADDRESS", REPORT_MESSAGE)
