"""Where Flask-Caching keeps rendered pages in one worker: bounded in bytes, not only in count.

cachelib's ``SimpleCache`` counts entries, so a few very large pages (a 10 MB article asked
for under many query strings) could fill a worker's memory within its threshold. This store
counts the bytes of each page (its gzipped body and ETag) and drops the least recently used
first once ``CACHE_MAX_BYTES`` would be passed; each entry also expires after its timeout. The
pages are immutable values, so they are kept as they are, not pickled.

It is the default ``CACHE_TYPE``; several hosts share ``RedisCache`` instead, bounded by
Redis's own ``maxmemory``.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import timedelta
from typing import Any

from cachetools import TLRUCache
from flask import Flask
from flask_caching.backends.base import BaseCache

ENTRY_OVERHEAD = 200  # bytes an entry costs beyond its value's own bytes, roughly
FOREVER = float("inf")


def value_size(value: Any) -> int:
    """The bytes a kept value holds: a rendered page's body and ETag, or what Python says."""
    body = getattr(value, "gzipped", None)
    if isinstance(body, bytes):
        return len(body) + len(getattr(value, "etag", "")) + ENTRY_OVERHEAD
    return sys.getsizeof(value) + ENTRY_OVERHEAD


def expiry(_key: str, value: tuple[float, Any], _now: float) -> float:
    return value[0]


class BoundedMemoryCache(BaseCache):
    """A thread-safe in-memory page store of at most ``max_bytes``."""

    def __init__(self, max_bytes: int, default_timeout: int = 300) -> None:
        super().__init__(default_timeout=default_timeout)
        self._entries: TLRUCache[str, tuple[float, Any]] = TLRUCache(
            maxsize=max_bytes,
            ttu=expiry,
            timer=time.monotonic,
            getsizeof=lambda entry: value_size(entry[1]),
        )
        self._lock = threading.Lock()

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BoundedMemoryCache:
        return cls(int(config["CACHE_MAX_BYTES"]), int(kwargs.get("default_timeout", 300)))

    @property
    def max_bytes(self) -> int:
        return int(self._entries.maxsize)

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return int(self._entries.currsize)

    def usage(self) -> tuple[int, int]:
        """The entries held and their bytes, read together."""
        with self._lock:
            return len(self._entries), int(self._entries.currsize)

    def _expires_at(self, timeout: int | timedelta | None) -> float:
        seconds = self._normalize_timeout(timeout)
        return FOREVER if seconds == 0 else time.monotonic() + seconds

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        if value_size(value) > self.max_bytes:
            return False
        with self._lock:
            self._entries[key] = (self._expires_at(timeout), value)
        return True

    def add(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        with self._lock:
            if key in self._entries:
                return False
        return self.set(key, value, timeout)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._entries.pop(key, None) is not None

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def clear(self) -> bool:
        with self._lock:
            self._entries.clear()
        return True
