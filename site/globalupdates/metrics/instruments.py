"""Every metric the site exports, named as docs/operations.md ("Metrics") describes them.

prometheus_client adds ``_total`` to a counter's name. Gauges say how the workers' values add
up in multiprocess mode: each worker's caches are its own, so their sizes are summed over the
live workers (``livesum``).

``METRICS_ENABLED`` false (``metrics.init_app`` sets ``RECORDING``) turns every metric here into
a no-op: the site then counts nothing, as it did before it had metrics. prometheus_client's
metrics belong to the process, so the setting does too: the app a process serves decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase


@dataclass
class Recording:
    enabled: bool = True


RECORDING = Recording()


class Ignored:
    """What a metric is while the metrics are off: every label and every write does nothing."""

    def labels(self, *values: object) -> Ignored:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None


IGNORED = Ignored()


class Switched:
    """A metric that records only while ``RECORDING.enabled``; ``metric`` is the metric itself."""

    def __init__(self, metric: MetricWrapperBase) -> None:
        self.metric = metric

    def current(self) -> Any:
        return self.metric if RECORDING.enabled else IGNORED

    def labels(self, *values: object) -> Any:
        return self.current().labels(*values)

    def inc(self, amount: float = 1) -> None:
        self.current().inc(amount)

    def set(self, value: float) -> None:
        self.current().set(value)

    def observe(self, amount: float) -> None:
        self.current().observe(amount)


def add_observations(histogram: Histogram, counts: list[int], total: float) -> None:
    """Add many observations to one labelled histogram at once: ``counts`` per bucket, in the
    order of its bounds with ``+Inf`` last (each observation in the first bucket whose bound
    holds it, as ``observe`` places it), and their sum.

    prometheus_client has no public way to add a count to a bucket, so this writes the same
    values ``observe`` writes; the version is pinned by the lock, and a test checks that the
    histogram reads the same as one observed value by value."""
    for value, count in zip(histogram._buckets, counts, strict=True):
        if count:
            value.inc(count)
    histogram._sum.inc(total)


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

HTTP_REQUESTS = Switched(
    Counter(
        "globalupdates_http_requests",
        "Requests answered, by endpoint group, method and status code",
        ["group", "method", "status"],
    )
)
HTTP_DURATION = Switched(
    Histogram(
        "globalupdates_http_request_duration_seconds",
        "Seconds from the request reaching the site to its response being ready, by endpoint group",
        ["group"],
        buckets=LATENCY_BUCKETS,
    )
)
RESPONSES = Switched(
    Counter(
        "globalupdates_responses",
        "Responses by the layer that answered: kept (in front of Flask), page_cache or render",
        ["layer"],
    )
)
CACHE_ENTRIES = Switched(
    Gauge(
        "globalupdates_cache_entries",
        "Entries in each in-memory cache, summed over the live workers",
        ["cache"],
        multiprocess_mode="livesum",
    )
)
CACHE_BYTES = Switched(
    Gauge(
        "globalupdates_cache_bytes",
        "Bytes held by each in-memory cache, summed over the live workers",
        ["cache"],
        multiprocess_mode="livesum",
    )
)
CHOICES = Switched(
    Counter(
        "globalupdates_choices",
        "Consent records committed to the proof chain, by action and edition",
        ["action", "edition"],
    )
)
CHOICES_BY_REGIME = Switched(
    Counter(
        "globalupdates_choices_by_regime",
        "Consent records committed to the proof chain, by action and the consent regime of "
        "where the reader was",
        ["action", "regime"],
    )
)
CHOICE_GRANTS = Switched(
    Counter(
        "globalupdates_choice_grants",
        "Categories granted in committed consent records, one per record and category",
        ["category"],
    )
)
AUDIT_CHOICES = Switched(
    Counter(
        "globalupdates_audit_choices",
        "Consent records made by flask consent audit, left out of the choice counters",
    )
)
AUDIT_REGIME_REQUESTS = Switched(
    Counter(
        "globalupdates_audit_regime_requests",
        "Requests naming the regime flask consent audit visits as (X-Consent-Audit-Regime), "
        "by whether the site honoured it (only from CONSENT_AUDIT_ALLOWED, a regime it has)",
        ["honoured"],
    )
)
CHOICE_SERVICE_GRANTS = Switched(
    Counter(
        "globalupdates_choice_service_grants",
        "Services granted in committed consent records, one per record and service",
        ["service"],
    )
)
CHAIN_APPENDS = Switched(
    Counter(
        "globalupdates_chain_appends",
        "Consent records appended to the proof chain (committed)",
    )
)
CHAIN_BATCH_SIZE = Switched(
    Histogram(
        "globalupdates_chain_batch_size",
        "Records per committed batch of the proof chain",
        buckets=BATCH_BUCKETS,
    )
)
CHAIN_APPEND_DURATION = Switched(
    Histogram(
        "globalupdates_chain_append_duration_seconds",
        "Seconds a batch of the proof chain took, from taking its lock to its commit",
        buckets=LATENCY_BUCKETS,
    )
)
DATABASE_ERRORS = Switched(
    Counter(
        "globalupdates_database_errors",
        "Requests answered 503 because of the database, by kind",
        ["kind"],
    )
)
REGIME_DISAGREEMENTS = Switched(
    Counter(
        "globalupdates_regime_disagreements",
        "Pages kept from shared caches because the regime the proxy keyed them on is not the "
        "one the site works out for the reader (a stale regions map in nginx)",
    )
)
CACHE_ERRORS = Switched(
    Counter(
        "globalupdates_cache_errors",
        "Failures of a shared store the site works on without (the page cache, the rate limits)",
        ["kind"],
    )
)
RATE_LIMIT_REFUSALS = Switched(
    Counter(
        "globalupdates_rate_limit_refusals",
        "Requests refused with 429 by a rate limit, by endpoint group",
        ["group"],
    )
)
FORGERY_REFUSALS = Switched(
    Counter(
        "globalupdates_forgery_refusals",
        "Cross-origin writes refused (403) by the forgery check",
    )
)
