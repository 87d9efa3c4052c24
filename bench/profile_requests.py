"""Profile the site's own work per request, in one process, without HTTP in the way.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/profile_requests.py returning-readers     # pyinstrument's call tree
    .venv/bin/python bench/profile_requests.py consent --requests 500
    .venv/bin/python bench/profile_requests.py beacon --rounds 7 --no-tree   # figures only

Each scenario sends the requests bench/run.py sends (bench/traffic.py makes both): first visits
over every page, returning readers each once on a page of its own draw, new readers choosing,
page views from readers who accepted all. The pages and the readers are found and made through
the app itself (its sitemap, its consent form). CPU time per request is printed first, so a
change can be judged by it rather than by req/s on a busy machine: one figure per round of
``--requests`` (each round its own requests, so each returning reader still comes once), then
the best and the median round (on a shared machine the best round is the one least disturbed by
others). The site counts its metrics as gunicorn's workers do (prometheus_client's
multiprocess mode, in a fresh ``PROMETHEUS_MULTIPROC_DIR``); ``--metrics off`` measures it
without them (``FLASK_METRICS_ENABLED=false``: their request steps left out of the pipeline,
every counter a no-op), to weigh them.
``FLASK_SQLALCHEMY_DATABASE_URI`` runs it on another database (a PostgreSQL one made
for it, say: one that already holds keyed consent records also needs the key file that signed
them, so give it that instance folder with ``FLASK_INSTANCE_PATH``, or choices answer 503).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support
# prometheus_client picks its multiprocess values when it is first imported (through the site).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gu-profile-metrics-")

from flask import Flask
from flask.testing import FlaskClient

from bench import traffic
from bench.traffic import Answer, Reader, Request

BASE = "http://localhost/"
WARM_UP = 50
SCENARIOS = ("first-visits", "returning-readers", "consent", "beacon")


def leave_metrics_out() -> None:
    """The site as it was without metrics: ``METRICS_ENABLED`` false leaves their request steps
    out of the pipeline and makes every counter a no-op."""
    os.environ["FLASK_METRICS_ENABLED"] = "false"


def prepared_app() -> Flask:
    folder = tempfile.mkdtemp(prefix="gu-profile-")
    os.environ.setdefault("FLASK_INSTANCE_PATH", folder)
    os.environ.setdefault("FLASK_SECRET_KEY", "profile-secret-not-for-production")
    os.environ.setdefault("FLASK_SQLALCHEMY_DATABASE_URI", f"sqlite:///{folder}/profile.sqlite3")
    for name in ("CONSENT_PER_READER", "CONSENT_PER_ADDRESS", "BEACON_PER_READER"):
        os.environ.setdefault(f"FLASK_RATELIMIT_{name}", "10000000 per minute")
    from globalupdates import create_app
    from globalupdates.prepare import prepare_site

    app = create_app()
    prepare_site(app)
    return app


def sender(client: FlaskClient) -> Callable[[Request], int]:
    def send(request: Request) -> int:
        response = client.open(
            request.path,
            method=request.method,
            headers=request.headers,
            data=request.body or None,
        )
        response.close()
        return response.status_code

    return send


def fetcher(client: FlaskClient) -> traffic.Fetch:
    def fetch(path: str, headers: dict[str, str]) -> Answer:
        response = client.get(path, headers=headers)
        names = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, names, response.get_data())

    return fetch


def make_readers(client: FlaskClient, site: traffic.Site, count: int, seed: int) -> list[Reader]:
    readers = []
    for choice in traffic.choices(site, count, seed):
        headers = {**traffic.FORM, **traffic.SAME_ORIGIN}
        response = client.post(choice.action, data=choice.body, headers=headers)
        if response.status_code != 303:
            raise SystemExit(f"POST {choice.action} answered {response.status_code}, not 303")
        cookies = traffic.kept_cookies(response.headers.getlist("Set-Cookie"))
        readers.append(Reader(kind=choice.kind, cookies=cookies))
    return readers


def scenario_requests(app: Flask, scenario: str, count: int, seed: int) -> list[Request]:
    client = app.test_client(use_cookies=False)
    site = traffic.discover(fetcher(client), BASE, seed)
    if scenario == "first-visits":
        return list(traffic.first_visits(site, count, seed))
    if scenario == "consent":
        return list(traffic.consent_posts(site, count, seed))
    readers = make_readers(client, site, count, seed)
    if scenario == "returning-readers":
        return list(traffic.returning_visits(site, readers, seed))
    return list(traffic.beacons(site, readers, count, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --requests to time")
    parser.add_argument("--no-tree", action="store_true", help="print the figures only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--metrics", choices=("multiprocess", "off"), default="multiprocess")
    args = parser.parse_args()
    if args.metrics == "off":
        leave_metrics_out()
    app = prepared_app()
    wanted = WARM_UP + (args.rounds + 1) * args.requests
    requests = scenario_requests(app, args.scenario, wanted, args.seed)
    send = sender(app.test_client(use_cookies=False))
    for request in requests[:WARM_UP]:
        send(request)
    rounds = []
    for number in range(args.rounds):
        start = WARM_UP + number * args.requests
        spent, statuses = cpu_per_request(send, requests[start : start + args.requests])
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        print(f"{args.scenario}: {spent * 1e6:.0f} µs of CPU per request, in process ({answers})")
        rounds.append(spent)
    if args.rounds > 1:
        best, middle = min(rounds) * 1e6, median(rounds) * 1e6
        print(f"{args.scenario}: best {best:.0f} µs, median {middle:.0f} µs")
    if args.no_tree:
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    with profiler:
        for request in requests[WARM_UP + args.rounds * args.requests :]:
            send(request)
    print(profiler.output_text(color=False, unicode=False))


def cpu_per_request(
    send: Callable[[Request], int], requests: list[Request]
) -> tuple[float, Counter[int]]:
    statuses: Counter[int] = Counter()
    started = time.process_time()
    for request in requests:
        statuses[send(request)] += 1
    return (time.process_time() - started) / len(requests), statuses


if __name__ == "__main__":
    main()
