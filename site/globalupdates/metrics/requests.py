"""Counting requests: by endpoint group, method and status, their latency, and the layer that
answered (``LAYER``: ``kept``, ``page_cache`` or ``render``).

Flask's requests are timed by two steps of ``pipeline``, the first before the view and the last
after it; the kept responses in front of Flask count their own answers (``count_answer``).

A kept response costs the site about a hundred microseconds, each write to a metric in
gunicorn's multiprocess mode a microsecond or two, and a histogram's ``observe`` about ten (two
writes, a lock and a walk through the buckets); so the two request counters and the latency
histogram are tallied in the worker (``TALLY``) and added to the metrics at most once a second,
by the next request, by a thread of the worker when it is idle, by a scrape, and when the worker
exits (``gunicorn.conf.py``'s ``worker_exit``).

With ``METRICS_ENABLED`` false, ``pipeline`` leaves both steps out and ``count_answer`` counts
nothing.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import MutableMapping
from typing import Any

from flask import Response, request

from .instruments import (
    HTTP_DURATION,
    HTTP_REQUESTS,
    LATENCY_BUCKETS,
    RECORDING,
    RESPONSES,
    add_observations,
)

LAYER = "globalupdates.layer"
GROUP = "globalupdates.group"
STARTED = "globalupdates.started"
KEPT, PAGE_CACHE, RENDER = "kept", "page_cache", "render"

BLUEPRINT_GROUPS = {
    "articles": "page",
    "consent": "consent",
    "gpc": "consent",
    "csp_reports": "beacon",
    "feeds": "feed",
    "health": "health",
    "metrics": "metrics",
}
ENDPOINT_GROUPS = {
    "articles.search_page": "search",
    "articles.show_embed_once": "consent",
    "consent.cookie_policy": "page",
    "consent.privacy_notice": "page",
    "features.record_page_view": "beacon",
    "features.record_timing": "beacon",
    "features.house_ad": "page",
    "features.choose_text_size": "reader_settings",
    "features.erase_reading_data": "reader_settings",
    "static": "static",
}


def endpoint_group(endpoint: str | None) -> str:
    """The group an endpoint's requests are counted in; ``other`` for no route (a 404)."""
    if endpoint is None:
        return "other"
    if endpoint in ENDPOINT_GROUPS:
        return ENDPOINT_GROUPS[endpoint]
    return BLUEPRINT_GROUPS.get(endpoint.partition(".")[0], "other")


COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class Children:
    """A metric's children by label values, each looked up through prometheus_client once:
    ``labels()`` checks and locks on every call, which costs a kept response more than the
    count itself."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.known: dict[tuple[object, ...], Any] = {}

    def __call__(self, *values: object) -> Any:
        child = self.known.get(values)
        if child is None:
            child = self.known[values] = self.metric.labels(*values)
        return child


REQUESTS_BY = Children(HTTP_REQUESTS.metric)
DURATION_BY = Children(HTTP_DURATION.metric)
RESPONSES_BY = Children(RESPONSES.metric)


class Durations:
    """One group's latencies as a histogram does, but in this process's memory: a count per
    bucket (the first whose bound holds the value, the last for any longer) and their sum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class RequestTally:
    """Request counts and latencies kept in this process until ``flush`` adds them to the
    metrics."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.layers: Counter[str] = Counter()
        self.durations: dict[str, Durations] = {}
        self.due = 0.0
        self.flusher_pid: int | None = None
        os.register_at_fork(after_in_child=self.start_afresh)

    def start_afresh(self) -> None:
        """In a forked worker: the master's counts and lock are not the worker's."""
        self.lock = threading.Lock()
        self.requests, self.layers, self.durations = Counter(), Counter(), {}
        self.due, self.flusher_pid = 0.0, None

    def count(
        self, group: str, method: str, status: int, layer: str, seconds: float, now: float
    ) -> None:
        with self.lock:
            self.requests[(group, method, status)] += 1
            self.layers[layer] += 1
            durations = self.durations.get(group)
            if durations is None:
                durations = self.durations[group] = Durations()
            durations.add(seconds)
            if now < self.due:
                return
        self.flush()

    def flush(self) -> None:
        with self.lock:
            requests, layers, durations = self.requests, self.layers, self.durations
            self.requests, self.layers, self.durations = Counter(), Counter(), {}
            self.due = time.perf_counter() + self.interval
            if self.flusher_pid != os.getpid():
                self.flusher_pid = os.getpid()
                threading.Thread(target=self.flush_while_idle, daemon=True).start()
        for labels, count in requests.items():
            REQUESTS_BY(*labels).inc(count)
        for layer, count in layers.items():
            RESPONSES_BY(layer).inc(count)
        for group, observed in durations.items():
            add_observations(DURATION_BY(group), observed.counts, observed.total)

    def flush_while_idle(self) -> None:
        """In each process that counts, so a worker without requests still hands in its last."""
        while True:
            time.sleep(self.interval)
            if time.perf_counter() >= self.due:
                self.flush()


TALLY = RequestTally()


def count_answer(
    environ: MutableMapping[str, Any], group: str, status: int, started: float
) -> None:
    if not RECORDING.enabled:
        return
    now = time.perf_counter()
    method = environ.get("REQUEST_METHOD", "")
    method = method if method in COUNTED_METHODS else "other"
    TALLY.count(group, method, status, environ.get(LAYER, RENDER), now - started, now)


def start_timing() -> None:
    """The first step before the view: note when the request reached Flask, and that it is
    rendered unless a cache answers it."""
    environ = request.environ
    environ.setdefault(STARTED, time.perf_counter())
    environ.setdefault(LAYER, RENDER)


def count_request(response: Response) -> Response:
    """The last step after the view: count the request with the status it leaves with."""
    environ = request.environ
    started = environ.get(STARTED)
    if started is not None:
        group = endpoint_group(request.endpoint)
        environ[GROUP] = group
        count_answer(environ, group, response.status_code, started)
    return response
