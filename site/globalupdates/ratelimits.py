"""Rate limits on the endpoints that write: the consent form and the features' beacons.

Each limited endpoint has two limits: a tight one per reader (keyed by the reader's session,
so that everyone behind one office or carrier address has their own allowance) and a
generous ceiling per network address. Limits come from config, so load tests can raise them.

Two things Flask-Limiter and ``limits`` would do on every limited request are done once
instead: each limit's text is parsed once per value (``ConfiguredLimit``), and the counters
of the default store expire without a thread (``WorkerMemoryStorage``). Counters in Redis go
on in the worker's memory while Redis fails (``FailSoftRedisStorage``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, request
from flask_babel import lazy_gettext
from flask_limiter import RouteLimit
from limits.storage import (
    RedisClusterStorage,
    RedisSentinelStorage,
    RedisStorage,
    Storage,
    storage_from_string,
)

from . import redisoptions
from .consent import current_consent
from .consent.web import csp_reports
from .consent.web import views as consent_views
from .extensions import limiter
from .features import views as feature_views
from .forgery import SAFE_METHODS
from .metrics.instruments import CACHE_ERRORS

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
    return f"{key_prefix()}reader:{current_consent().consent_id}"


def reader_unknown() -> bool:
    """Before a first choice there is no session (nothing is stored before the reader
    chooses), so readers cannot be told apart: many of them behind one office or carrier
    address must not share one reader's allowance. Only the per-address ceiling applies."""
    return current_consent().consent_id is None


def address_key() -> str:
    return f"{key_prefix()}address:{request.remote_addr or 'unknown'}"


def key_prefix() -> str:
    """This app's ``RATELIMIT_KEY_PREFIX``, read on each request: the one limiter serves every
    app of the process (tests make many) and Flask-Limiter would keep the first app's prefix
    for all of them, so the site's key functions carry it instead."""
    return str(current_app.config.get("RATELIMIT_KEY_PREFIX") or "")


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


@dataclasses.dataclass(kw_only=True, unsafe_hash=True)
class ConfiguredLimit(RouteLimit):
    """A limit whose text comes from the app's config, parsed once per distinct text.

    Flask-Limiter asks a limit for its parsed form on every request it checks, and parses the
    text again each time. The parsed limits depend only on the text (and on this object's
    key function, message and exemption, which never change), so they are kept per text:
    each app still gets the limit its own config names.
    """

    parsed: dict[str, tuple[Any, ...]] = dataclasses.field(
        default_factory=dict, hash=False, compare=False, repr=False
    )

    def __iter__(self) -> Iterator[Any]:  # Flask-Limiter's RuntimeLimit, not exported
        text = self.limit_provider() if callable(self.limit_provider) else self.limit_provider
        limits = self.parsed.get(text)
        if limits is None:
            limits = self.parsed[text] = tuple(super().__iter__())
        return iter(limits)


def limit_posts(
    blueprint: Blueprint, per_reader: str | None, per_address: str, message: Callable[[], str]
):
    """Limit every POST of a blueprint. The same provider objects are used for every app,
    so Flask-Limiter sees the same limit each time and does not stack copies of it."""
    if per_reader is not None:
        ConfiguredLimit(
            limit_provider=LIMIT_PROVIDERS[per_reader],
            limiter=limiter,
            key_function=reader_key,
            exempt_when=reader_unknown,
            methods=["POST"],
            error_message=message,
            override_defaults=True,
        )(blueprint)
    ConfiguredLimit(
        limit_provider=LIMIT_PROVIDERS[per_address],
        limiter=limiter,
        key_function=address_key,
        methods=["POST"],
        error_message=message,
        override_defaults=True,
    )(blueprint)


SWEEP_SECONDS = 60.0


class WorkerMemoryStorage(Storage):
    """Rate-limit counters in this worker's memory (``worker-memory://``), for Flask-Limiter's
    default fixed-window strategy.

    The ``memory://`` store of ``limits`` expires its counters from a ``threading.Timer`` of
    10 ms that it starts again whenever the last one has run out, so a worker started a new
    thread for most of the POSTs it limited (about a third of a choice's time). Here a
    counter past its window is dropped when it is next read, and the others are swept in
    passing at most once a minute: no thread at all. Registered with ``limits`` under its
    scheme (its documented way to add a store) when this module is imported.
    """

    STORAGE_SCHEME = ["worker-memory"]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.counters: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()
        self.next_sweep = time.time() + SWEEP_SECONDS

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.lock:
            if now >= self.next_sweep:
                self.sweep(now)
            count, expires_at = self.counters.get(key, (0, 0.0))
            if expires_at <= now:
                count, expires_at = 0, now + expiry
            count += amount
            self.counters[key] = (count, expires_at)
        return count

    def get(self, key: str) -> int:
        count, expires_at = self.counters.get(key, (0, 0.0))
        return count if expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        _, expires_at = self.counters.get(key, (0, 0.0))
        return expires_at if expires_at > now else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self.lock:
            cleared = len(self.counters)
            self.counters.clear()
        return cleared

    def clear(self, key: str) -> None:
        with self.lock:
            self.counters.pop(key, None)

    def sweep(self, now: float) -> None:
        """Drop every counter whose window has passed (called with the lock held)."""
        self.counters = {key: kept for key, kept in self.counters.items() if kept[1] > now}
        self.next_sweep = now + SWEEP_SECONDS


@limiter.request_filter
def a_safe_request() -> bool:
    """Every limit here is on POST, so a GET or HEAD skips Flask-Limiter's per-request
    resolution of limits, which cost as much as serving a cached page: Flask-Limiter asks its
    request filters before it resolves any limit (what is left of its hook on a GET is a
    look-up of exemptions, about 20 µs)."""
    return request.method in SAFE_METHODS


FAILSOFT = "failsoft+"
_T = TypeVar("_T")


class FailSoftRedisStorage(Storage):
    """Rate-limit counters in Redis that go on in the worker's memory while Redis fails.

    ``failsoft+redis://host:6379/0`` (and ``failsoft+`` before any other Redis scheme of
    ``limits``): counts in the Redis store of ``limits`` for the URI without its prefix. When
    Redis raises (refused, or no answer within the Redis timeouts), the count is made in a
    ``WorkerMemoryStorage`` instead, and Redis is left alone for
    ``RATELIMIT_STORAGE_RETRY_SECONDS`` so readers do not each wait for the timeout; then it
    is tried again. The failure is logged once per such interval, and the return once.

    This store never reports Redis down, so Flask-Limiter's own fallback (limits'
    ``memory://``, which starts timer threads) is never used. Fixed-window strategy only, the
    one ``WorkerMemoryStorage`` counts for.
    """

    STORAGE_SCHEME = [
        FAILSOFT + scheme
        for store in (RedisStorage, RedisClusterStorage, RedisSentinelStorage)
        for scheme in store.STORAGE_SCHEME or ()
    ]

    def __init__(
        self, uri: str, wrap_exceptions: bool = False, **options: float | str | bool
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.redis = cast(Storage, storage_from_string(uri.removeprefix(FAILSOFT), **options))
        self.memory = WorkerMemoryStorage()
        self.resting_until = float("-inf")
        self.failed_since_report = False
        self.failures = 0
        self.counted_in_memory = 0
        self.lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.answer(lambda store: store.incr(key, expiry, amount), counts=True)

    def get(self, key: str) -> int:
        return self.answer(lambda store: store.get(key))

    def get_expiry(self, key: str) -> float:
        return self.answer(lambda store: store.get_expiry(key))

    def check(self) -> bool:
        return self.redis.check()

    def reset(self) -> int | None:
        self.memory.reset()
        return self.answer(lambda store: store.reset())

    def clear(self, key: str) -> None:
        self.memory.clear(key)
        self.answer(lambda store: store.clear(key))

    def answer(self, ask: Callable[[Storage], _T], counts: bool = False) -> _T:
        """What ``ask`` gets from Redis or, while Redis fails or is left alone after failing,
        from the worker's memory (``counts``: it is a count, reported with the failures)."""
        if time.monotonic() >= self.resting_until:
            try:
                value = ask(self.redis)
            except self.redis.base_exceptions as error:
                self.failed(error)
            else:
                if self.failed_since_report:
                    self.back_in_redis()
                return value
        if counts:
            with self.lock:
                self.counted_in_memory += 1
        return ask(self.memory)

    def back_in_redis(self) -> None:
        """Redis answered after failing: said once per outage."""
        with self.lock:
            if not self.failed_since_report:
                return
            self.failed_since_report = False
        current_app.logger.warning("rate-limit counters are in Redis again")

    def failed(self, error: Exception) -> None:
        CACHE_ERRORS.labels("rate_limits").inc()
        retry_seconds = float(current_app.config["RATELIMIT_STORAGE_RETRY_SECONDS"])
        with self.lock:
            self.failures += 1
            self.failed_since_report = True
            now = time.monotonic()
            if now < self.resting_until:
                return
            self.resting_until = now + retry_seconds
            failures, counted = self.failures, self.counted_in_memory
            self.failures = self.counted_in_memory = 0
        current_app.logger.warning(
            "rate-limit counters unavailable in Redis, counted in this worker for the next "
            "%g s: %s: %s (%d failure(s) and %d count(s) in the worker since the last report)",
            retry_seconds,
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
            failures,
            counted,
        )


def fail_soft(uri: str) -> str:
    """The operator's Redis URI as this site's fail-soft store's (``redis://...`` becomes
    ``failsoft+redis://...``); any other store's URI as it is."""
    scheme = urlsplit(uri).scheme
    if FAILSOFT + scheme in FailSoftRedisStorage.STORAGE_SCHEME:
        return FAILSOFT + uri
    return uri


def bind_limiter(app: Flask) -> None:
    """Bind Flask-Limiter to the app, which adds its own request hooks (its check, its
    headers, its clean-up): ``pipeline`` calls this where those hooks belong.

    The operator names Redis by its plain URI (the one every Redis tool and
    ``CACHE_REDIS_URL`` use); the site counts there through ``FailSoftRedisStorage``, with
    the Redis timeouts on its client."""
    uri = app.config["RATELIMIT_STORAGE_URI"] = fail_soft(app.config["RATELIMIT_STORAGE_URI"])
    if uri.startswith(FAILSOFT):
        app.config["RATELIMIT_STORAGE_OPTIONS"] = redisoptions.client_options(
            app, app.config.get("RATELIMIT_STORAGE_OPTIONS")
        )
    limiter.init_app(app)


def init_app(app: Flask) -> None:
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
