"""The site's metrics as an operator reads them: Debian's Prometheus scraping the site under
gunicorn with three workers every second, while readers choose and the workers are replaced
again and again (``max_requests``, then ``SIGHUP``). What Prometheus holds must equal the proof
log, no counter may go backwards when a worker goes, and the workers' metric files must not pile
up (the known pitfall of prometheus_client's multiprocess mode: files of dead workers that every
scrape reads). Prometheus is required, not optional: ``make test`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.consent import SAME_ORIGIN
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.proxied_site import RAISED_LIMITS, Site
from tests.support.servers import free_port, stop_process_group

pytestmark = pytest.mark.slow

MISSING_PROMETHEUS = (
    "prometheus is not installed; `make test` installs it (apt-get install -y prometheus)"
)
WORKERS = 3
RESTARTS = 50
MAX_REQUESTS = 12  # each worker is replaced after this many requests, scrapes included
ACTIONS = ("accept_all", "reject_all", "save")
# The live workers' counter, histogram and gauge files, the two archives, the lock file.
MOST_FILES = WORKERS * 3 + 2 + 1


@contextmanager
def running_prometheus(target_port: int, folder: Path) -> Iterator[str]:
    """Debian's prometheus scraping ``/metrics`` on ``target_port`` every second; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(MISSING_PROMETHEUS)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: globalupdates\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )
    port = free_port()
    with open(folder / "prometheus.log", "ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: query(url, "up") == 1.0, 30, "prometheus never scraped the site")
        yield url
    finally:
        stop_process_group(process, signal.SIGTERM, 20)


def query(url: str, expression: str) -> float | None:
    """The value of ``expression`` now, through Prometheus's query API; None when it has none
    (or Prometheus is not answering yet)."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    try:
        with urllib.request.urlopen(address, timeout=5) as response:
            answer = json.load(response)
    except OSError:
        return None
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(condition, seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.25)


def stored_records(database: Path) -> tuple[int, Counter[str]]:
    """The proof log's records and their grants, read from the database itself."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT categories FROM consent_record").fetchall()
    grants = Counter(category for (categories,) in rows for category in json.loads(categories))
    return len(rows), grants


def metric_files(server_folder: Path) -> list[str]:
    return sorted(path.name for path in (server_folder / "instance" / "prometheus").iterdir())


def replace_workers(server: Server, seen: set[int]) -> None:
    """SIGHUP: gunicorn starts new workers and lets the old ones finish."""
    before = server.worker_pids()
    os.kill(server.master_pid, signal.SIGHUP)
    seen |= server.wait_for_workers(WORKERS, exclude=before)


def test_prometheus_sees_every_choice_through_fifty_worker_restarts(
    migrated_sqlite: Path, tmp_path: Path
):
    database = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    settings = {
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_CMD_ARGS": f"--max-requests {MAX_REQUESTS} --max-requests-jitter 0",
        **RAISED_LIMITS,
    }
    site_folder = tmp_path / "site"
    with running_gunicorn(f"sqlite:///{database}", site_folder, settings) as server:
        records_before, _ = stored_records(database)
        seen = server.worker_pids()
        site = Site(port=server.port, app_port=server.port)
        with running_prometheus(server.port, tmp_path / "prometheus") as prometheus:
            made = 0
            while len(seen) - WORKERS < RESTARTS:
                for action in ACTIONS:
                    answer = site.choose(action, categories=("analytics",), **SAME_ORIGIN)
                    assert answer.status == 303, answer.body[:300]
                    made += 1
                seen |= server.worker_pids()
                if made % (3 * len(ACTIONS)) == 0:
                    replace_workers(server, seen)
            records, grants = stored_records(database)
            assert records - records_before == made
            wait_for(
                lambda: query(prometheus, "sum(globalupdates_choices_total)") == made,
                20,
                f"Prometheus never showed {made} choices: "
                f"{query(prometheus, 'sum(globalupdates_choices_total)')}",
            )
            assert query(prometheus, "sum(globalupdates_chain_appends_total)") == made
            for category, count in grants.items():
                expression = f'sum(globalupdates_choice_grants_total{{category="{category}"}})'
                assert query(prometheus, expression) == count, category
            resets = query(prometheus, "sum(resets(globalupdates_choices_total[10m]))")
            assert resets == 0, "a counter went backwards when a worker went"
            # Each worker tallies its request counts and hands them in within a second, and
            # when it exits: every choice's POST is there, whichever worker answered it.
            posts = 'sum(globalupdates_http_requests_total{group="consent",status="303"})'
            wait_for(
                lambda: query(prometheus, posts) == made,
                20,
                f"Prometheus shows {query(prometheus, posts)} choice requests, not {made}",
            )
        assert len(seen) - WORKERS >= RESTARTS
        files = metric_files(site_folder)
        assert len(files) <= MOST_FILES, files
        dead = {int(name.split("_")[-1][:-3]) for name in files if name[-4].isdigit()} - (
            server.worker_pids()
        )
        assert dead == set(), f"files of exited workers {dead} are left: {files}"
