"""Load the site under its own gunicorn config with wrk, beside a bare Flask app and nginx.

Each scenario runs three times back to back: the site, a bare Flask app (one route, a
fixed string) under the very same gunicorn settings, and nginx serving the article page's
HTML from a file. One more row puts the site behind deploy/nginx.conf exactly as deployed
(its page cache on) and sets it against nginx serving the same page from a file. After each
run it reads the memory of gunicorn's master and workers. The machine is shared and noisy,
so read the ratios, not the absolutes.

    .venv/bin/python bench/run.py                  # the table, 10 s a run, 32 connections
    .venv/bin/python bench/run.py --soak           # also 128 connections for 30 s on the article
    .venv/bin/python bench/run.py --compare-workers   # sync, gthread, gevent side by side
    .venv/bin/python bench/run.py --seconds 1      # the quickest whole run: does it all start?

gunicorn and nginx are started (and stopped) by tests/support, as the tests start them.

Not part of ``make test``: the figures are targets to watch, not pass/fail checks.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from tests.support.consent import SAME_ORIGIN, cookie_value
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.nginx_server import Configuration, deployed_nginx, nginx_binary, running_nginx
from tests.support.pages import ARTICLE, NACHTZUG

ROOT = Path(__file__).resolve().parents[1]
RAISED_LIMITS = (
    "CONSENT_PER_READER",
    "CONSENT_PER_ADDRESS",
    "BEACON_PER_READER",
    "BEACON_PER_ADDRESS",
)
# deploy/nginx.conf sets one of each forwarded header; the app trusts exactly that one.
PROXY_FIX = {f"FLASK_PROXY_FIX_X_{name}": "1" for name in ("FOR", "PROTO", "HOST", "PORT")}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NGINX_ROW = "article, first visit, through deploy/nginx.conf"

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int] = field(default_factory=dict)

    def cells(self) -> str:
        rate, p50, p99 = self.requests_per_second, self.p50_ms, self.p99_ms
        return f"{rate:8.0f} {p50:6.1f} {p99:6.1f} {self.errors:6d}"

    def error_summary(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in self.error_kinds.items())
        return f"{self.errors} errors" + (f" ({kinds})" if kinds else "")


@dataclass
class Scenario:
    name: str
    path: str
    method: str = "GET"
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def bench_settings(workdir: Path, gunicorn_env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The database and the settings every gunicorn of the bench runs with."""
    database = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    settings = {
        "GUNICORN_LOGLEVEL": "warning",
        # One wrk reader sends thousands of choices a second: the limits stay on (their
        # cost is part of every request) but are raised so that they never answer 429.
        **{f"FLASK_RATELIMIT_{name}": "10000000 per minute" for name in RAISED_LIMITS},
        **gunicorn_env,
    }
    return database, settings


@contextmanager
def gunicorn(
    app: str, workdir: Path, gunicorn_env: dict[str, str], ready_path: str = "/healthz"
) -> Iterator[Server]:
    """gunicorn serving ``app`` with the project's config, once every worker runs.

    The port answers as soon as the first worker does, and a load started then lets that
    worker take every kept-alive connection for the whole run, holding the app (site or
    bare) to one core: so this waits for all of them, and a moment more.
    """
    database, settings = bench_settings(workdir, gunicorn_env)
    with running_gunicorn(database, workdir, settings, app=app, ready_path=ready_path) as server:
        server.wait_for_workers(int(settings.get("WEB_CONCURRENCY") or 3))
        time.sleep(1)
        yield server


def file_server_conf(www: Path, workers: int) -> Configuration:
    """nginx with keep-alive, serving ``www/index.html`` at ``/``."""

    def configuration(port: int, prefix: Path) -> str:
        return f"""
worker_processes {workers};
pid logs/nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location / {{ default_type text/html; }}
    }}
}}
"""

    return configuration


@contextmanager
def nginx_serving(html: bytes, workdir: Path, workers: int) -> Iterator[int]:
    """nginx serving the article's HTML at ``/`` from a file; yields its port."""
    www = workdir / "www"
    www.mkdir(parents=True, exist_ok=True)
    for folder in (workdir, www):
        folder.chmod(0o755)  # nginx's workers run as an unprivileged user
    (www / "index.html").write_bytes(html)
    with running_nginx(file_server_conf(www, workers)) as nginx:
        yield nginx.port


def run_wrk(port: int, scenario: Scenario, connections: int, seconds: int, workdir: Path) -> Result:
    script = workdir / "report.lua"
    lines = [f'wrk.method = "{scenario.method}"']
    if scenario.body:
        lines.append(f"wrk.body = {json.dumps(scenario.body)}")
    script.write_text("\n".join(lines) + WRK_REPORT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    for name, value in scenario.headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}{scenario.path}")
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    return Result(
        requests_per_second=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        errors=sum(report["errors"].values()),
        error_kinds={kind: n for kind, n in report["errors"].items() if n},
    )


def fetch(port: int, method: str, path: str, body: str = "", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body or None, headers=headers or {})
    response = conn.getresponse()
    return response, response.read().decode()


def reader_who_accepted_all(port: int) -> tuple[str, str]:
    """A reader's session cookie after "accept all", and the form body that chose it.

    Forgery protection reads Fetch Metadata, so the form carries no token: a page of the
    site's own would send ``Sec-Fetch-Site: same-origin``.
    """
    body = urlencode({"action": "accept_all", "next": ARTICLE})
    response, _ = fetch(port, "POST", "/consent", body, {**FORM, **SAME_ORIGIN})
    assert response.status == 303, response.status
    cookie = cookie_value(response.headers.get_all("Set-Cookie") or [])
    assert cookie is not None, "the choice set no gu_session cookie"
    return cookie, body


# What every browser sends with a page request; the site then serves its stored gzip as it is.
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}


def site_scenarios(port: int) -> list[Scenario]:
    cookie, consent_body = reader_who_accepted_all(port)
    reader = "0123456789abcdef0123456789abcdef"
    return [
        Scenario("article, first visit", ARTICLE, headers=BROWSER),
        Scenario(
            "article, stored choice", ARTICLE, headers={"Cookie": f"gu_session={cookie}", **BROWSER}
        ),
        Scenario("front page", "/", headers=BROWSER),
        Scenario("German article, first visit", NACHTZUG, headers=BROWSER),
        Scenario(
            "POST /consent (DB write)",
            "/consent",
            method="POST",
            body=consent_body,
            headers={"Cookie": f"gu_session={cookie}", **FORM, **SAME_ORIGIN},
        ),
        Scenario(
            "page-view beacon",
            "/features/pageview",
            method="POST",
            body=json.dumps({"path": ARTICLE}),
            headers={
                "Cookie": f"gu_session={cookie}; gu_reader={reader}",
                "Content-Type": "application/json",
                **SAME_ORIGIN,
            },
        ),
    ]


@dataclass
class Memory:
    """One process's resident size, proportional share (PSS) and private pages (USS), in MB."""

    rss: float
    pss: float
    uss: float

    def cell(self) -> str:
        return f"{self.rss:.0f}/{self.pss:.0f}/{self.uss:.0f}"


def rollup_kb(rollup: str, field_name: str) -> int:
    match = re.search(rf"^{field_name}:\s+(\d+) kB", rollup, re.M)
    return int(match.group(1)) if match else 0


def process_memory(pid: int) -> Memory:
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    private = rollup_kb(rollup, "Private_Clean") + rollup_kb(rollup, "Private_Dirty")
    return Memory(
        rss=rollup_kb(rollup, "Rss") / 1024,
        pss=rollup_kb(rollup, "Pss") / 1024,
        uss=private / 1024,
    )


@dataclass
class GunicornMemory:
    master: Memory
    workers: list[Memory]

    @property
    def total_pss(self) -> float:
        return self.master.pss + sum(worker.pss for worker in self.workers)

    def line(self) -> str:
        workers = ", ".join(worker.cell() for worker in self.workers)
        return f"master {self.master.cell()}; workers {workers}; total PSS {self.total_pss:.0f} MB"


def gunicorn_memory(server: Server) -> GunicornMemory:
    """The master and each worker, read while they still run (after the load)."""
    return GunicornMemory(
        master=process_memory(server.master_pid),
        workers=[process_memory(pid) for pid in sorted(server.worker_pids())],
    )


def settings_line(env: dict[str, str]) -> str:
    sys.path.insert(0, str(ROOT))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        namespace = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = ("worker_class", "workers", "threads", "keepalive")
    return ", ".join(f"{key}={namespace[key]}" for key in keys)


def ratio(site: float, bare: float) -> str:
    return f"{site / bare:.2f}" if bare else "n/a"


@dataclass
class Row:
    name: str
    site: Result
    bare: Result
    site_memory: GunicornMemory
    bare_memory: GunicornMemory


def run_scenario(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], scenario: Scenario
) -> Row:
    """The scenario on the site, then the bare app's one route, each on a fresh gunicorn."""
    with gunicorn("wsgi:app", workdir, env) as server:
        site = run_wrk(server.port, scenario, args.connections, args.seconds, workdir)
        site_memory = gunicorn_memory(server)
    with gunicorn("bench.bare_app:app", workdir, env, ready_path="/") as server:
        bare = run_wrk(server.port, Scenario("bare", "/"), args.connections, args.seconds, workdir)
        bare_memory = gunicorn_memory(server)
    return Row(scenario.name, site, bare, site_memory, bare_memory)


def from_file(args: argparse.Namespace, workdir: Path, html: str, workers: int) -> Result:
    with nginx_serving(html.encode(), workdir, workers) as nginx_port:
        return run_wrk(nginx_port, Scenario("nginx", "/"), args.connections, args.seconds, workdir)


def print_ratios_and_memory(rows: list[Row]) -> None:
    # The bare app's figure moves a lot between runs (how wrk's kept-alive connections happen to
    # spread over the workers decides it), so each row is also set against the bare app's best
    # run of the whole bench: the more demanding comparison.
    best_rate = max(row.bare.requests_per_second for row in rows)
    best_p99 = min(row.bare.p99_ms for row in rows)
    print()
    print(f"{'scenario':26} | site/bare req/s | site/bare p99 | vs best bare: req/s    p99")
    for row in rows:
        rate = ratio(row.site.requests_per_second, row.bare.requests_per_second)
        p99 = ratio(row.site.p99_ms, row.bare.p99_ms)
        best = ratio(row.site.requests_per_second, best_rate)
        best_tail = ratio(row.site.p99_ms, best_p99)
        print(f"{row.name:26} | {rate:>15} | {p99:>13} | {best:>18} {best_tail:>6}")
    print()
    print("memory after each run, MB as RSS/PSS/USS (USS = Private_Clean + Private_Dirty)")
    for row in rows:
        print(f"{row.name:26} | site: {row.site_memory.line()}")
        print(f"{'':26} | bare: {row.bare_memory.line()}")


def cache_counts(statuses: Counter[str]) -> str:
    total = sum(statuses.values())
    parts = ", ".join(f"{status} {count}" for status, count in statuses.most_common())
    return f"{parts} (of {total} requests)" if total else "nothing logged"


def through_deployed_nginx(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], html: str
) -> None:
    """First visits to the article through deploy/nginx.conf, against the page from a file.

    Both nginx run as many workers (``worker_processes auto``); the deployed one also writes
    its buffered access log, from which the X-Cache-Status counts are read once it stops.
    """
    with (
        gunicorn("wsgi:app", workdir, {**env, **PROXY_FIX}) as server,
        deployed_nginx(server.port) as proxy,
    ):
        # The first visit fills the cache, as a reader's would; without it, wrk's 32 opening
        # requests all wait on nginx's cache lock, whose waiters look again every 500 ms.
        fetch(proxy.port, "GET", ARTICLE)
        proxied = run_wrk(
            proxy.port, Scenario(NGINX_ROW, ARTICLE), args.connections, args.seconds, workdir
        )
        proxy.stop()
        statuses = proxy.cache_statuses()
    static = from_file(args, workdir, html, os.cpu_count() or 1)
    print()
    print(f"{'':48} | {'req/s    p50    p99   errs':30}")
    print(f"{NGINX_ROW:48} | {proxied.cells()}")
    print(f"{'the same page from a file, nginx':48} | {static.cells()}")
    rate = ratio(proxied.requests_per_second, static.requests_per_second)
    print(f"nginx-proxied / nginx-file: req/s {rate}, p99 {ratio(proxied.p99_ms, static.p99_ms)}")
    print(f"X-Cache-Status through deploy/nginx.conf: {cache_counts(statuses)}")


def soak(workdir: Path, env: dict[str, str], scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        with gunicorn("wsgi:app", workdir, env) as server:
            result = run_wrk(server.port, scenario, 128, 30, workdir)
        print(
            f"\n{scenario.name}, 128 connections for 30 s: {result.cells()}"
            f"  {result.error_summary()} (wrk's timeout is 2 s)"
        )


def side_by_side(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> None:
    print(f"gunicorn: {settings_line(env)}; wrk -t2 -c{args.connections} -d{args.seconds}s")
    print(f"{'scenario':26} | {'site req/s   p50    p99   errs':30} | {'bare Flask':30} | nginx")
    with gunicorn("wsgi:app", workdir, env) as server:
        _, article_html = fetch(server.port, "GET", ARTICLE)
        scenarios = site_scenarios(server.port)
    rows = []
    for scenario in scenarios:
        row = run_scenario(args, workdir, env, scenario)
        static = from_file(args, workdir, article_html, 2)
        rows.append(row)
        kinds = f"  site: {row.site.error_summary()}" if row.site.errors else ""
        print(f"{row.name:26} | {row.site.cells()} | {row.bare.cells()} | {static.cells()}{kinds}")
    print_ratios_and_memory(rows)
    through_deployed_nginx(args, workdir, env, article_html)
    if args.soak:
        soak(workdir, env, scenarios[:2])


WORKER_CHOICES = [
    {"GUNICORN_WORKER_CLASS": "sync", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "1"},
    {"GUNICORN_WORKER_CLASS": "sync", "WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "1"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "4"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "2"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "16"},
    {"GUNICORN_WORKER_CLASS": "gevent", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "1"},
    {"GUNICORN_WORKER_CLASS": "gevent", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "1"},
]


def compare_workers(args: argparse.Namespace, workdir: Path) -> None:
    """The article with a stored choice and the consent POST under each worker set-up."""
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, keep-alive requested by wrk")
    print(f"{'worker set-up':36} | {'article req/s p50 p99 errs':30} | POST /consent")
    for choice in WORKER_CHOICES:
        with gunicorn("wsgi:app", workdir, choice) as server:
            scenarios = site_scenarios(server.port)
            article = run_wrk(server.port, scenarios[1], args.connections, args.seconds, workdir)
            consent = run_wrk(server.port, scenarios[3], args.connections, args.seconds, workdir)
        label = settings_line(choice).replace(", keepalive=5", "")
        print(f"{label:36} | {article.cells()} | {consent.cells()}")


def require_tools() -> None:
    found = {"wrk": shutil.which("wrk"), "nginx": nginx_binary()}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        sys.exit(f"bench needs {' and '.join(missing)}: apt-get install -y wrk nginx")


def main() -> None:
    require_tools()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--soak", action="store_true", help="also 128 connections for 30 s")
    parser.add_argument("--compare-workers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gu-bench-") as folder:
        workdir = Path(folder)
        if args.compare_workers:
            compare_workers(args, workdir)
        else:
            side_by_side(args, workdir, {})


if __name__ == "__main__":
    main()
