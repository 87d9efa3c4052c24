"""Load the site under its own gunicorn config with wrk, beside a bare Flask app and nginx.

Each scenario runs three times back to back: the site, a bare Flask app (one route, a
fixed string) under the very same gunicorn settings, and nginx serving the article page's
HTML from a file. The machine is shared and noisy, so read the ratios, not the absolutes.

    .venv/bin/python bench/run.py                  # the table, 10 s a run, 32 connections
    .venv/bin/python bench/run.py --soak           # also 128 connections for 30 s on the article
    .venv/bin/python bench/run.py --compare-workers   # sync, gthread, gevent side by side

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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"
SECRET = "bench-secret-key-not-for-production"
RAISED_LIMITS = (
    "CONSENT_PER_READER",
    "CONSENT_PER_ADDRESS",
    "BEACON_PER_READER",
    "BEACON_PER_ADDRESS",
)

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


@dataclass
class Scenario:
    name: str
    path: str
    method: str = "GET"
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, path: str = "/", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


def bench_environment(workdir: Path, gunicorn_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FLASK_INSTANCE_PATH": str(workdir / "instance"),
            "FLASK_SECRET_KEY": SECRET,
            "FLASK_SQLALCHEMY_DATABASE_URI": os.environ.get(
                "BENCH_DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}"
            ),
            "GUNICORN_ACCESSLOG": "",
            "GUNICORN_LOGLEVEL": "warning",
            # One wrk reader sends thousands of choices a second: the limits stay on (their
            # cost is part of every request) but are raised so that they never answer 429.
            **{f"FLASK_RATELIMIT_{name}": "10000000 per minute" for name in RAISED_LIMITS},
        }
    )
    env.update(gunicorn_env)
    return env


@contextmanager
def gunicorn(app: str, workdir: Path, gunicorn_env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """Yield (port, master pid) of gunicorn serving ``app`` with the project's config."""
    port = free_port()
    env = bench_environment(workdir, gunicorn_env)
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    with open(workdir / "gunicorn.log", "ab") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_for_port(port)
        yield port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@contextmanager
def nginx_serving(html: bytes, workdir: Path, workers: int) -> Iterator[int]:
    """nginx with keep-alive, serving the article's HTML at ``/`` from a file."""
    root = workdir / "nginx"
    (root / "www").mkdir(parents=True, exist_ok=True)
    for folder in (workdir, root, root / "www"):
        folder.chmod(0o755)  # nginx's workers run as an unprivileged user
    (root / "www" / "index.html").write_bytes(html)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        f"""
worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location / {{ default_type text/html; }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=30)


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


SESSION_COOKIE = re.compile(r"gu_session=([^;]+)")
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def fetch(port: int, method: str, path: str, body: str = "", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body or None, headers=headers or {})
    response = conn.getresponse()
    return response, response.read().decode()


def reader_who_accepted_all(port: int) -> tuple[str, str, str]:
    """A reader's session cookie after "accept all", a CSRF token for it, and the form body."""
    response, html = fetch(port, "GET", "/consent")
    cookie = SESSION_COOKIE.search(response.getheader("Set-Cookie", "")).group(1)
    token = CSRF_FIELD.search(html).group(1)
    body = urlencode({"csrf_token": token, "action": "accept_all", "next": ARTICLE})
    headers = {
        "Cookie": f"gu_session={cookie}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response, _ = fetch(port, "POST", "/consent", body, headers)
    assert response.status == 303, response.status
    cookie = SESSION_COOKIE.search(response.getheader("Set-Cookie", "")).group(1)
    _, html = fetch(port, "GET", ARTICLE, headers={"Cookie": f"gu_session={cookie}"})
    token = CSRF_META.search(html).group(1)
    return cookie, token, body


def site_scenarios(port: int) -> list[Scenario]:
    cookie, token, consent_body = reader_who_accepted_all(port)
    reader = "0123456789abcdef0123456789abcdef"
    return [
        Scenario("article, first visit", ARTICLE),
        Scenario("article, stored choice", ARTICLE, headers={"Cookie": f"gu_session={cookie}"}),
        Scenario("front page", "/"),
        Scenario(
            "POST /consent (DB write)",
            "/consent",
            method="POST",
            body=consent_body,
            headers={
                "Cookie": f"gu_session={cookie}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ),
        Scenario(
            "page-view beacon",
            "/features/pageview",
            method="POST",
            body=json.dumps({"path": ARTICLE}),
            headers={
                "Cookie": f"gu_session={cookie}; gu_reader={reader}",
                "Content-Type": "application/json",
                "X-CSRFToken": token,
            },
        ),
    ]


def worker_memory_mb(master_pid: int) -> list[tuple[float, float]]:
    """Each worker's resident size and its proportional share (PSS) of shared pages."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    sizes = []
    for pid in children:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        rss = int(re.search(r"^Rss:\s+(\d+) kB", rollup, re.M).group(1)) / 1024
        pss = int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1)) / 1024
        sizes.append((rss, pss))
    return sizes


def memory_cells(sizes: list[tuple[float, float]]) -> str:
    return ", ".join(f"{rss:.0f} (PSS {pss:.0f})" for rss, pss in sizes)


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


def side_by_side(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> None:
    print(f"gunicorn: {settings_line(env)}; wrk -t2 -c{args.connections} -d{args.seconds}s")
    print(f"{'scenario':26} | {'site req/s   p50    p99   errs':30} | {'bare Flask':30} | nginx")
    with gunicorn("wsgi:app", workdir, env) as (site_port, site_pid):
        _, article_html = fetch(site_port, "GET", ARTICLE)
        scenarios = site_scenarios(site_port)
    ratios = []
    for scenario in scenarios:
        with gunicorn("wsgi:app", workdir, env) as (site_port, site_pid):
            site = run_wrk(site_port, scenario, args.connections, args.seconds, workdir)
            rss = worker_memory_mb(site_pid)
        with gunicorn("bench.bare_app:app", workdir, env) as (bare_port, bare_pid):
            bare = run_wrk(
                bare_port, Scenario("bare", "/"), args.connections, args.seconds, workdir
            )
            bare_rss = worker_memory_mb(bare_pid)
        with nginx_serving(article_html.encode(), workdir, 2) as nginx_port:
            static = run_wrk(
                nginx_port, Scenario("nginx", "/"), args.connections, args.seconds, workdir
            )
        ratio = site.requests_per_second / bare.requests_per_second
        ratios.append((scenario.name, ratio, rss, bare_rss))
        kinds = f"  site errors: {site.error_kinds}" if site.error_kinds else ""
        print(f"{scenario.name:26} | {site.cells()} | {bare.cells()} | {static.cells()}{kinds}")
    print()
    print("scenario                    site/bare   worker MB after the run: site | bare Flask")
    for name, ratio, rss, bare_rss in ratios:
        print(f"{name:26}  {ratio:8.0%}   {memory_cells(rss)} | {memory_cells(bare_rss)}")
    if args.soak:
        for index in (0, 1):
            with gunicorn("wsgi:app", workdir, env) as (site_port, _):
                soak = run_wrk(site_port, scenarios[index], 128, 30, workdir)
            print(
                f"\n{scenarios[index].name}, 128 connections for 30 s: {soak.cells()}"
                f"  errors by kind (wrk's 2 s timeout): {soak.error_kinds or 'none'}"
            )


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
        with gunicorn("wsgi:app", workdir, choice) as (port, _):
            scenarios = site_scenarios(port)
            article = run_wrk(port, scenarios[1], args.connections, args.seconds, workdir)
            consent = run_wrk(port, scenarios[3], args.connections, args.seconds, workdir)
        label = settings_line(choice).replace(", keepalive=5", "")
        print(f"{label:36} | {article.cells()} | {consent.cells()}")


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
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
