"""The options the site's Redis clients (the page cache, the rate-limit counters) are made with.

Without timeouts a Redis that accepts connections but never answers (frozen, or behind a
broken network path) holds each reader's request for seconds; with them, Redis that does not
answer in time counts as down, and the page cache and the rate limits go on without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def client_options(app: Flask, configured: Mapping[str, Any] | None) -> dict[str, Any]:
    """``configured`` (an operator's ``CACHE_OPTIONS`` or ``RATELIMIT_STORAGE_OPTIONS``) with
    the connect and answer timeouts of ``REDIS_CONNECT_SECONDS`` and ``REDIS_ANSWER_SECONDS``
    where it does not set them itself."""
    return {
        "socket_connect_timeout": float(app.config["REDIS_CONNECT_SECONDS"]),
        "socket_timeout": float(app.config["REDIS_ANSWER_SECONDS"]),
        **(configured or {}),
    }


def names_redis(value: object) -> bool:
    """Whether a ``CACHE_TYPE`` means Redis."""
    return "redis" in str(value or "").lower()
