"""/metrics in one process (the tests' apps, ``flask run``): who may read it, and that each
counter counts what it names. The counters live in the process's default registry, shared by
every app a test run builds, so each test compares two scrapes. The real site under gunicorn,
scraped by a real Prometheus, is tests/serving/test_prometheus.py; nginx refusing /metrics is
tests/serving/test_nginx.py."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from globalupdates import pipeline
from globalupdates.consent.proof.checkpoints import take_checkpoint
from globalupdates.consent.proof.records import utc_text
from globalupdates.metrics.instruments import RECORDING
from globalupdates.metrics.views import allowed_networks
from tests.support.consent import GPC, SAME_ORIGIN, choose, records
from tests.support.pages import ARTICLE
from tests.support.servers import free_port

Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(client: FlaskClient) -> Counter[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    assert response.headers["Cache-Control"] == "no-store"
    values: Counter[Sample] = Counter()
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def total(values: Counter[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry these labels."""
    wanted = set(labels.items())
    return sum(
        value for (sample, have), value in values.items() if sample == name and wanted <= have
    )


def grew(before: Counter[Sample], after: Counter[Sample], name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


# ---- who may read it --------------------------------------------------------------------------


def test_metrics_answer_loopback_by_default(client):
    names = {name for name, _ in scrape(client)}
    assert {"globalupdates_forgery_refusals_total", "globalupdates_chain_appends_total"} <= names


@pytest.mark.parametrize("address", ["10.1.2.3", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1"])
def test_metrics_are_a_404_page_to_any_other_address(client, address):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 404
    assert "globalupdates_" not in response.get_data(as_text=True)


def test_an_operator_allows_a_network_and_only_it(app_factory):
    app = app_factory(METRICS_ALLOWED="10.20.0.0/16, 192.0.2.9")
    client = app.test_client()
    for address, status in [
        ("10.20.3.4", 200),
        ("192.0.2.9", 200),
        ("10.21.0.1", 404),
        ("127.0.0.1", 404),
    ]:
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
        assert response.status_code == status, address


def test_behind_a_proxy_the_forwarded_address_decides(app_factory):
    """Under ProxyFix the address is the reader's, not the proxy's loopback one."""
    client = app_factory(PROXY_FIX_X_FOR=1).test_client()
    outside = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
    assert outside.status_code == 404
    forged = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.5"})
    assert forged.status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_a_setting_that_names_no_address_stops_the_app_naming_it(app_factory):
    with pytest.raises(ValueError, match="'localhost' is neither an IP address nor a network"):
        app_factory(METRICS_ALLOWED="127.0.0.1,localhost")
    assert allowed_networks(["::1", " "]) == allowed_networks("::1")


# ---- what it counts ---------------------------------------------------------------------------


def test_the_choice_counters_add_up_to_the_records_stored(app, client):
    before_records = len(records(app))
    before = scrape(client)
    for action, categories, language in [
        ("accept_all", (), "en"),
        ("save", ("analytics",), "de"),
        ("reject_all", (), "fr"),
        ("accept_all", (), "de"),
    ]:
        reader = app.test_client()
        assert choose(reader, action, categories, language=language).status_code == 303
    withdrawing = app.test_client()
    choose(withdrawing, "accept_all")
    choose(withdrawing, "reject_all")
    opted_out = app.test_client()
    choose(opted_out, "accept_all")
    opted_out.get(ARTICLE, headers=GPC)
    after = scrape(client)
    made = records(app)[before_records:]
    assert grew(before, after, "globalupdates_choices_total") == len(made) == 8
    by_label = Counter(
        ({"save": "custom"}.get(r.action, r.action), r.language or "en") for r in made
    )
    for (action, edition), count in by_label.items():
        assert grew(
            before, after, "globalupdates_choices_total", action=action, edition=edition
        ) == (count), (action, edition)
    assert {action for action, _ in by_label} == {
        "accept_all",
        "custom",
        "reject_all",
        "withdrawal",
        "gpc_opt_out",
    }
    grants = Counter(category for record in made for category in record.categories)
    for category, count in grants.items():
        assert grew(before, after, "globalupdates_choice_grants_total", category=category) == count
    services = Counter(service for record in made for service in record.services or ())
    assert set(services) == {"vidmoor", "clipwell", "tallyhouse"}
    for service, count in services.items():
        assert (
            grew(before, after, "globalupdates_choice_service_grants_total", service=service)
            == count
        ), service
    assert grew(before, after, "globalupdates_chain_appends_total") == len(made)
    assert grew(before, after, "globalupdates_chain_batch_size_sum") == len(made)
    assert grew(before, after, "globalupdates_chain_append_duration_seconds_count") >= 1


def test_a_refused_choice_counts_no_choice_but_a_forgery_refusal(app, client):
    before = scrape(client)
    reader = app.test_client()
    reader.get("/consent")
    refused = reader.post(
        "/consent", data={"action": "accept_all"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403
    after = scrape(client)
    assert grew(before, after, "globalupdates_forgery_refusals_total") == 1
    assert grew(before, after, "globalupdates_choices_total") == 0
    assert (
        grew(before, after, "globalupdates_http_requests_total", group="consent", status="403") == 1
    )


def test_with_metrics_off_nothing_is_counted_no_step_runs_and_metrics_is_a_404(app_factory):
    """``METRICS_ENABLED`` false: the site as it was before it had metrics, what
    ``bench/run.py --compare-metrics`` weighs the metrics against."""
    off = app_factory(METRICS_ENABLED=False)
    try:
        hooks = [*off.before_request_funcs[None], *off.after_request_funcs[None]]
        assert not [hook for hook in hooks if hook in pipeline.METRIC_STEPS]
        client = off.test_client()
        assert client.get("/metrics").status_code == 404
        before = REGISTRY.get_sample_value("globalupdates_forgery_refusals_total")
        client.get("/consent")
        refused = client.post(
            "/consent", data={"action": "accept_all"}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert refused.status_code == 403
        assert REGISTRY.get_sample_value("globalupdates_forgery_refusals_total") == before
    finally:
        RECORDING.enabled = True  # the process's metrics, shared with the next test's app
    on = app_factory()
    hooks = [*on.before_request_funcs[None], *on.after_request_funcs[None]]
    assert [hook for hook in hooks if hook in pipeline.METRIC_STEPS] == list(pipeline.METRIC_STEPS)


def test_a_rate_limited_choice_is_counted_as_a_refusal_not_a_choice(app_factory):
    app = app_factory(RATELIMIT_CONSENT_PER_ADDRESS="2 per minute")
    client = app.test_client()
    before = scrape(client)
    statuses = [choose(app.test_client(), "accept_all").status_code for _ in range(3)]
    assert statuses == [303, 303, 429]
    after = scrape(client)
    assert grew(before, after, "globalupdates_rate_limit_refusals_total", group="consent") == 1
    assert grew(before, after, "globalupdates_choices_total") == 2


def test_each_layer_that_answers_a_page_is_counted(app_factory):
    """A reader who chose: the first request renders, the next comes from the kept responses
    in front of Flask; without them, from the page cache."""
    for kept_bytes, second_layer in [(8 * 1024 * 1024, "kept"), (0, "page_cache")]:
        app = app_factory(KEPT_RESPONSE_BYTES=kept_bytes)
        from globalupdates.articles.importer import import_paths
        from tests.support.apps import CONTENT_DIR

        with app.app_context():
            import_paths([CONTENT_DIR])
        scraper = app.test_client()
        reader = app.test_client()
        choose(reader, "reject_all")
        before = scrape(scraper)
        first = reader.get(ARTICLE)
        second = reader.get(ARTICLE)
        assert first.status_code == second.status_code == 200
        after = scrape(scraper)
        # The first scrape is a rendered answer too, counted once it has gone.
        assert grew(before, after, "globalupdates_responses_total", layer="render") == 1 + 1
        assert grew(before, after, "globalupdates_responses_total", layer=second_layer) == 1
        assert (
            grew(before, after, "globalupdates_http_requests_total", group="page", status="200")
            == 2
        )
        assert (
            grew(before, after, "globalupdates_http_request_duration_seconds_count", group="page")
            == 2
        )
        cache = "kept_responses" if second_layer == "kept" else "page_cache"
        assert total(after, "globalupdates_cache_entries", cache=cache) >= 1
        assert total(after, "globalupdates_cache_bytes", cache=cache) > len(first.data) / 10


def test_a_database_outage_is_counted_by_kind(app_on, tmp_path):
    empty = app_on(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    client = empty.test_client()
    before = scrape(client)
    assert client.get("/").status_code == 503
    after = scrape(client)
    assert grew(before, after, "globalupdates_database_errors_total", kind="missing_schema") == 1


def test_a_page_cache_that_fails_is_counted(app_factory):
    app = app_factory(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        KEPT_RESPONSE_BYTES=0,
    )
    from globalupdates.articles.importer import import_paths
    from tests.support.apps import CONTENT_DIR

    with app.app_context():
        import_paths([CONTENT_DIR])
    client = app.test_client()
    before = scrape(client)
    assert client.get(ARTICLE).status_code == 200
    after = scrape(client)
    assert grew(before, after, "globalupdates_cache_errors_total", kind="page_cache") >= 1


# ---- the checkpoint's age ---------------------------------------------------------------------


def checkpoint_line(app: Flask, taken_at: datetime, **changed: object) -> str:
    with app.app_context():
        fields = json.loads(take_checkpoint().as_json())
    return json.dumps({**fields, "taken_at": utc_text(taken_at), **changed})


def test_checkpoint_age_is_that_of_the_newest_checkpoint_the_chain_extends(
    app_factory, tmp_path: Path
):
    path = tmp_path / "checkpoints.jsonl"
    app = app_factory(CONSENT_CHECKPOINT_FILE=str(path))
    client = app.test_client()
    assert choose(app.test_client(), "accept_all").status_code == 303
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    path.write_text(checkpoint_line(app, an_hour_ago) + "\n")
    age = total(scrape(client), "globalupdates_checkpoint_age_seconds")
    assert 3590 < age < 3700
    forged = checkpoint_line(app, datetime.now(UTC), hash="0" * 64)
    path.write_text(checkpoint_line(app, an_hour_ago) + "\n" + forged + "\n")
    age = total(scrape(client), "globalupdates_checkpoint_age_seconds")
    assert 3590 < age < 3700, "a checkpoint the chain does not extend gives no age"
    path.write_text(forged + "\n")
    values = scrape(client)
    assert not any(name == "globalupdates_checkpoint_age_seconds" for name, _ in values)


def test_without_a_checkpoint_file_there_is_no_checkpoint_age(client):
    assert not any(name == "globalupdates_checkpoint_age_seconds" for name, _ in scrape(client))


def test_a_scrape_neither_sets_a_cookie_nor_is_kept(client):
    response = client.get("/metrics", headers=SAME_ORIGIN)
    assert response.headers.getlist("Set-Cookie") == []
    assert response.headers["Cache-Control"] == "no-store"


# ---- gunicorn's workers: their files ----------------------------------------------------------

WORKER = """
from globalupdates.metrics.instruments import CHOICES, CHAIN_BATCH_SIZE
CHOICES.labels("accept_all", "en").inc(3)
CHAIN_BATCH_SIZE.observe(2)
"""


def worker_totals(directory: Path) -> Counter[Sample]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    values: Counter[Sample] = Counter()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def test_an_exited_workers_counts_stay_and_its_files_go(tmp_path: Path):
    """Each worker writes files named after its pid; once it is reaped they are folded into
    one archive per type, and every total stays what it was."""
    import subprocess
    import sys

    from globalupdates.metrics.multiprocess import empty_directory, retire_worker

    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left by an earlier run")
    empty_directory(directory)
    assert list(directory.iterdir()) == []
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}

    def pids() -> set[int]:
        return {int(path.stem.split("_")[-1]) for path in directory.glob("counter_*.db")}

    for _ in range(4):
        subprocess.run([sys.executable, "-c", WORKER], env=environment, check=True)
    assert len(pids()) == 4
    before = worker_totals(directory)
    assert total(before, "globalupdates_choices_total", action="accept_all") == 12
    for pid in pids():
        retire_worker(directory, pid)
    after = worker_totals(directory)
    assert after == before
    assert sorted(p.name for p in directory.iterdir()) == [
        "counter_archive.db",
        "histogram_archive.db",
        "merge.lock",
    ]


def test_latencies_tallied_in_the_worker_read_as_if_observed_one_by_one():
    """The kept responses tally their latencies and hand them to the histogram once a second;
    what a scrape reads must be what observing each value would have made, bucket by bucket."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from globalupdates.metrics.instruments import LATENCY_BUCKETS, add_observations
    from globalupdates.metrics.requests import Durations

    seconds = [0.0, 0.001, 0.0011, 0.004, 0.0099, 0.01, 0.3, 2.5, 9.0, 10.0, 11.0, 600.0]
    tallied = Durations()
    for value in seconds:
        tallied.add(value)
    observed_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    observed, added = (
        Histogram("latency", "", ["group"], buckets=LATENCY_BUCKETS, registry=registry)
        for registry in (observed_registry, tallied_registry)
    )
    for value in seconds:
        observed.labels("page").observe(value)
    add_observations(added.labels("page"), tallied.counts, tallied.total)

    def without_created(text: bytes) -> list[str]:
        return [line for line in text.decode().splitlines() if "_created" not in line]

    assert without_created(generate_latest(tallied_registry)) == without_created(
        generate_latest(observed_registry)
    )
    assert sum(tallied.counts) == len(seconds)
