"""Load the site as real traffic looks, each scenario beside a floor that serves the same bytes.

    .venv/bin/python bench/run.py                         # the whole bench: 50,000 readers, 2 runs
    .venv/bin/python bench/run.py --seconds 1 --readers 2000 --runs 1 --results /tmp/quick
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/NAME bench/run.py
    .venv/bin/python bench/run.py --compare-workers       # worker set-ups side by side
    .venv/bin/python bench/run.py --compare-metrics       # the site with metrics on and off
    .venv/bin/python bench/run.py --soak                  # then 128 connections on the site

The site is a black box over HTTP. Its pages are found from /sitemap.xml (bench/traffic.py);
readers are made through real ``POST /consent`` answers, every cookie those set is kept; then
each scenario runs on the site and on its floor, side by side:

- first visits (no cookie) over every page of every edition, through gunicorn; the floor is a
  bare Flask app (bench/bare_app.py) under the same gunicorn settings returning each URL's bytes
  as the site served them;
- returning readers through gunicorn, each reader's cookies sent once in a run (each wrk thread
  its own slice, stopped when the slice is used up); the floor returns an Accept-All reader's
  bytes;
- first visits and returning readers through deploy/nginx.conf, after a warm pass (readers
  repeat here), with the X-Cache-Status counts of the measured part; the floor is nginx serving
  the bytes deploy/nginx.conf gave as files, with as many workers and kept-alive connections;
- ``POST /consent`` from new readers, against a bare POST that parses the form, signs a session
  cookie and answers 303; the page-view beacon, against a bare POST that parses JSON.

One site gunicorn serves every scenario of every run, so its memory (PSS of the master and each
worker, read after each scenario and after the whole bench) reflects the whole bench. Every
run writes wrk's output and summary.json to bench/results/<UTC time>-<label>/; bench/report.py
renders the tables docs/performance.md quotes from them. The machine is shared: read ratios.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from bench import report, traffic
from bench.bare_app import PAGES_VARIABLE
from bench.load import Measurement, run_wrk
from bench.traffic import Answer, Reader, Site
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.nginx_server import Configuration, deployed_nginx, nginx_binary, running_nginx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RAISED_LIMITS = (
    "CONSENT_PER_READER",
    "CONSENT_PER_ADDRESS",
    "BEACON_PER_READER",
    "BEACON_PER_ADDRESS",
)
# deploy/nginx.conf sets one of each forwarded header; the app trusts exactly that one. Direct
# requests carry none of them, so the one site gunicorn serves both kinds of scenario.
PROXY_FIX = {f"FLASK_PROXY_FIX_X_{name}": "1" for name in ("FOR", "PROTO", "HOST", "PORT")}
BARE_APP = "bench.bare_app:create_app()"
BARE_SECRET_KEY = "bench-bare-secret-not-for-production"
# The warm passes through nginx come from another loopback network, so that the counts read
# from nginx's access log are those of the measured part alone (wrk connects from 127.0.0.1;
# nginx logs each address cut to its /24).
WARM_ADDRESS = "127.0.1.2"
MEASURED_NETWORK = "127.0.0.0"
TIMED_LINES = 20_000
SOAK_CONNECTIONS = 128
SOAK_SECONDS = 30
READER_MAKERS = 8


# Talking to the site.


def get(port: int, path: str, headers: dict[str, str], source: str | None = None) -> Answer:
    address = (source, 0) if source else None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=address)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        names = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, names, body)
    finally:
        conn.close()


def fetcher(port: int) -> traffic.Fetch:
    return lambda path, headers: get(port, path, headers)


class Chooser:
    """A kept-alive connection that posts choices and keeps what each answer sets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, choice: traffic.Choice) -> http.client.HTTPResponse:
        headers = {**traffic.FORM, **traffic.SAME_ORIGIN}
        self.conn.request("POST", choice.action, body=choice.body, headers=headers)
        response = self.conn.getresponse()
        response.read()
        return response

    def choose(self, choice: traffic.Choice) -> Reader:
        try:
            response = self.post(choice)
        except (ConnectionError, http.client.HTTPException):
            # gunicorn closed an idle kept-alive connection: open another, once.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            response = self.post(choice)
        if response.status != 303:
            raise RuntimeError(f"POST {choice.action} answered {response.status}, not 303")
        cookies = traffic.kept_cookies(response.headers.get_all("Set-Cookie") or [])
        if not cookies:
            raise RuntimeError(f"POST {choice.action} set no cookie")
        return Reader(kind=choice.kind, cookies=cookies)


def make_readers(port: int, choices: Sequence[traffic.Choice]) -> list[Reader]:
    """One reader per choice, each through a real POST, from a few kept-alive connections."""
    readers: list[Reader | None] = [None] * len(choices)
    failures: list[BaseException] = []
    lock = threading.Lock()
    next_index = iter(range(len(choices)))

    def work() -> None:
        chooser = Chooser(port)
        try:
            while not failures:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                readers[index] = chooser.choose(choices[index])
        except Exception as error:  # reported below, in the main thread
            failures.append(error)
        finally:
            chooser.conn.close()

    workers = [threading.Thread(target=work) for _ in range(READER_MAKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise RuntimeError(f"making readers failed: {failures[0]}") from failures[0]
    return [reader for reader in readers if reader is not None]


def probe_readers(port: int, site: Site) -> dict[str, Reader]:
    """One reader of each kind, outside the measured ones: for captures and warm passes."""
    edition = site.editions[0]
    kinds = {"accept_all": {"action": "accept_all"}, "reject_all": {"action": "reject_all"}}
    for category in edition.categories:
        kinds[f"save:{category}"] = {category: "on", "action": "save"}
    chooser = Chooser(port)
    try:
        return {
            kind: chooser.choose(traffic.Choice(kind, edition.consent_action, urlencode(fields)))
            for kind, fields in kinds.items()
        }
    finally:
        chooser.conn.close()


# What the floors serve.


def answer_record(answer: Answer) -> dict[str, Any]:
    headers = {"Content-Type": answer.headers.get("content-type", "text/html")}
    if "content-encoding" in answer.headers:
        headers["Content-Encoding"] = answer.headers["content-encoding"]
    return {"body": base64.b64encode(answer.body).decode(), "headers": headers}


def capture(port: int, pages: Sequence[str], cookie: str | None) -> dict[str, Any]:
    """Each page as the site serves it: gzip when asked for, identity otherwise."""
    captured = {}
    extra = {"Cookie": cookie} if cookie else {}
    for page in pages:
        codings = {}
        for coding, headers in (("gzip", traffic.BROWSER), ("identity", {})):
            answer = get(port, page, {**headers, **extra})
            if answer.status != 200:
                raise RuntimeError(f"{page} answered {answer.status} while being captured")
            codings[coding] = answer_record(answer)
        captured[page] = codings
    return captured


def write_bare_pages(path: Path, port: int, site: Site, reader: Reader) -> None:
    pages = {
        "first_visit": capture(port, site.pages, None),
        "reader": capture(port, site.shared_pages, reader.cookie_header),
    }
    categories = sorted({name for edition in site.editions for name in edition.categories})
    document = {"pages": pages, "categories": categories, "secret_key": BARE_SECRET_KEY}
    path.write_text(json.dumps(document), encoding="utf-8")


def files_conf(www: Path, files: dict[str, tuple[str, str]], workers: int) -> Configuration:
    """nginx serving each URL's bytes from a file: ``files`` maps a URL to (file, encoding)."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    file_map = "\n".join(
        f"        {quoted(url)} {quoted(name)};" for url, (name, _) in files.items()
    )
    encoding_map = "\n".join(
        f"        {quoted(url)} {quoted(coding)};" for url, (_, coding) in files.items()
    )

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
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    types {{ }}
    default_type text/html;
    map_hash_bucket_size 256;
    map $request_uri $bench_file {{
        default "";
{file_map}
    }}
    map $request_uri $bench_encoding {{
        default "";
{encoding_map}
    }}
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location / {{
            try_files $bench_file =404;
            add_header Content-Encoding $bench_encoding;
        }}
    }}
}}
"""

    return configuration


@contextmanager
def nginx_from_files(pages: dict[str, Answer], workdir: Path, workers: int) -> Iterator[int]:
    """nginx serving each page's bytes (a ``.gz`` file where they were gzip); yields its port."""
    www = workdir / "www"
    shutil.rmtree(www, ignore_errors=True)
    www.mkdir(parents=True)
    for folder in (workdir, www):
        folder.chmod(0o755)  # nginx's workers run as an unprivileged user
    files = {}
    for number, (url, answer) in enumerate(pages.items()):
        coding = answer.headers.get("content-encoding", "")
        name = f"/{number}" + (".gz" if coding == "gzip" else ".html")
        (www / name.lstrip("/")).write_bytes(answer.body)
        files[url] = (name, coding)
    with running_nginx(files_conf(www, files, workers)) as nginx:
        yield nginx.port


# Memory.


def rollup_kb(rollup: str, field_name: str) -> int:
    match = re.search(rf"^{field_name}:\s+(\d+) kB", rollup, re.M)
    return int(match.group(1)) if match else 0


def process_memory(pid: int) -> dict[str, float]:
    """A process's resident size, proportional share (PSS) and private pages (USS), in MB."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    private = rollup_kb(rollup, "Private_Clean") + rollup_kb(rollup, "Private_Dirty")
    return {
        "rss": round(rollup_kb(rollup, "Rss") / 1024, 1),
        "pss": round(rollup_kb(rollup, "Pss") / 1024, 1),
        "uss": round(private / 1024, 1),
    }


def gunicorn_memory(server: Server) -> dict[str, Any]:
    master = process_memory(server.master_pid)
    workers = [process_memory(pid) for pid in sorted(server.worker_pids())]
    total = master["pss"] + sum(worker["pss"] for worker in workers)
    return {"master": master, "workers": workers, "total_pss": round(total, 1)}


def process_cpu_seconds(pid: int) -> float:
    """The user and system CPU time a process has used so far (``/proc/PID/stat``)."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(after_name[11]), int(after_name[12])
    return (user + system) / os.sysconf("SC_CLK_TCK")


def site_cpu_seconds(server: Server) -> dict[int, float]:
    """The CPU time of the gunicorn master and each worker, by process id."""
    pids = [server.master_pid, *sorted(server.worker_pids())]
    return {pid: process_cpu_seconds(pid) for pid in pids}


def cpu_us_per_answer(
    before: dict[int, float], after: dict[int, float], answered: int
) -> float | None:
    """The site's CPU time per answer over one wrk run; None when a process came or went
    (its time would be lost or counted from nothing) or nothing was answered.

    Unlike requests per second, this hardly moves with what else the machine (or the host
    under it) does while the bench runs, so it shows a cost of a few per cent that the
    throughput of a shared 2-core machine hides."""
    if set(before) != set(after) or not answered:
        return None
    spent = sum(after[pid] - before[pid] for pid in after)
    return round(spent / answered * 1_000_000, 1)


# Servers.


def bench_settings(workdir: Path, extra: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The database and the settings every gunicorn of the bench runs with."""
    database = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    settings = {
        "GUNICORN_LOGLEVEL": "warning",
        # One wrk reader sends thousands of choices a second: the limits stay on (their
        # cost is part of every request) but are raised so that they never answer 429.
        **{f"FLASK_RATELIMIT_{name}": "10000000 per minute" for name in RAISED_LIMITS},
        **extra,
    }
    return database, settings


@contextmanager
def gunicorn(
    app: str, workdir: Path, extra: dict[str, str], ready_path: str = "/healthz"
) -> Iterator[Server]:
    """gunicorn serving ``app`` with the project's config, once every worker runs.

    The port answers as soon as the first worker does, and a load started then lets that
    worker take every kept-alive connection for the whole run, holding the app (site or
    bare) to one core: so this waits for all of them, and a moment more.
    """
    database, settings = bench_settings(workdir.parent, extra)
    with running_gunicorn(database, workdir, settings, app=app, ready_path=ready_path) as server:
        server.wait_for_workers(int(gunicorn_settings(settings)["workers"]))
        time.sleep(1)
        yield server


def workers(server: Server) -> int:
    return len(server.worker_pids())


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    """What gunicorn.conf.py sets under these environment variables."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_line(env: dict[str, str]) -> str:
    namespace = gunicorn_settings(env)
    keys = ("worker_class", "workers", "threads", "keepalive")
    return ", ".join(f"{key}={namespace[key]}" for key in keys)


def require_tools() -> None:
    found = {"wrk": shutil.which("wrk"), "nginx": nginx_binary()}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        sys.exit(f"bench needs {' and '.join(missing)}: apt-get install -y wrk nginx")


# The bench.


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    results: Path
    site: Site
    readers: list[Reader]
    probes: dict[str, Reader]
    files: dict[str, Path]
    raw_folder: str = ""  # where in ``results`` wrk's outputs go

    def measure(
        self,
        port: int,
        key: str,
        side: str,
        run: int | str,
        *,
        once: bool,
        connections: int | None = None,
        seconds: int | None = None,
    ) -> Measurement:
        raw = self.results / self.raw_folder / f"run{run}-{key}-{side}.txt"
        result = run_wrk(
            port,
            self.files[key],
            once=once,
            seconds=seconds or self.args.seconds,
            threads=self.args.threads,
            connections=connections or self.args.connections,
            raw=raw,
            results=self.results,
        )
        statuses = ", ".join(f"{code} {count}" for code, count in result.statuses.items())
        errors = f", errors {result.errors}" if result.errors else ""
        print(
            f"  {key:24} {side:5} {result.requests_per_second:9,.0f} req/s"
            f"  p50 {result.p50_ms:6.1f}  p99 {result.p99_ms:6.1f} ms"
            f"  ({result.answered:,} in {result.seconds:.1f} s: {statuses}{errors})",
            flush=True,
        )
        return result


def request_files(bench_dir: Path, site: Site, readers: list[Reader], seed: int) -> dict[str, Path]:
    files = {
        "first_visits": traffic.first_visits(site, TIMED_LINES, seed),
        "returning_readers": traffic.returning_visits(site, readers, seed),
        "consent": traffic.consent_posts(site, TIMED_LINES, seed),
        "beacon": traffic.beacons(site, readers, TIMED_LINES, seed),
    }
    paths = {}
    for key, requests in files.items():
        paths[key] = bench_dir / f"{key}.txt"
        traffic.write_requests(paths[key], requests)
    paths["first_visits_nginx"] = paths["first_visits"]
    paths["returning_readers_nginx"] = paths["returning_readers"]
    return paths


def warm_site(port: int, site: Site, probes: dict[str, Reader], workers: int) -> None:
    """Every page as a first visit and for a reader of each kind, a few times over fresh
    connections, so that every worker has probably met each: real traffic finds a site that
    has been running, not one just started."""
    cookies = [None, *(reader.cookie_header for reader in probes.values())]
    for _ in range(workers):
        for cookie in cookies:
            extra = {"Cookie": cookie} if cookie else {}
            for page in site.shared_pages if cookie else site.pages:
                get(port, page, {**traffic.BROWSER, **extra})


def warm_pass(
    port: int, site: Site, cookies: Sequence[str | None]
) -> dict[str | None, dict[str, Answer]]:
    """Every page once for each cookie (None: a first visit; a reader's cookies: the shared
    pages), from the warm-up address; what deploy/nginx.conf answered to each, for the floor
    to serve."""
    answers: dict[str | None, dict[str, Answer]] = {}
    for cookie in cookies:
        extra = {"Cookie": cookie} if cookie else {}
        answers[cookie] = {}
        for page in site.shared_pages if cookie else site.pages:
            answer = get(port, page, {**traffic.BROWSER, **extra}, source=WARM_ADDRESS)
            if answer.status != 200:
                raise RuntimeError(f"{page} answered {answer.status} through nginx")
            answers[cookie][page] = answer
    return answers


def through_nginx(
    bench: Bench, site_server: Server, run: int, key: str, returning: bool
) -> dict[str, Measurement]:
    """One scenario through deploy/nginx.conf after a warm pass, then the floor from files."""
    site, warmed = nginx_site(bench, site_server, run, key, returning)
    return {"site": site, "floor": nginx_floor(bench, run, key, returning, warmed)}


def nginx_cookies(bench: Bench, returning: bool) -> list[str | None]:
    """The cookies of the warm pass: none for first visits, one reader of each kind else."""
    if returning:
        return [reader.cookie_header for reader in bench.probes.values()]
    return [None]


def nginx_site(
    bench: Bench,
    site_server: Server,
    run: int,
    key: str,
    returning: bool,
    changes: dict[str, str] | None = None,
    side: str = "site",
    logged_network: str | None = MEASURED_NETWORK,
) -> tuple[Measurement, dict[str | None, dict[str, Answer]]]:
    """One scenario through deploy/nginx.conf (with ``changes``) after a warm pass; the cache's
    verdicts are read from its log where its lines open with ``logged_network``."""
    with deployed_nginx(site_server.port, changes=changes) as proxy:
        warmed = warm_pass(proxy.port, bench.site, nginx_cookies(bench, returning))
        site = bench.measure(proxy.port, key, side, run, once=False)
        proxy.stop()
        statuses = proxy.cache_statuses(logged_network) if logged_network else None
    site.extra["warm_requests"] = sum(len(pages) for pages in warmed.values())
    site.memory = gunicorn_memory(site_server)
    if statuses is not None:
        site.extra["cache"] = dict(statuses.most_common())
        hits = report.hit_share(site.as_json())
        print(f"  {'':24} X-Cache-Status {site.extra['cache']} (HIT {report.percent(hits)})")
    return site, warmed


def nginx_floor(
    bench: Bench,
    run: int,
    key: str,
    returning: bool,
    warmed: dict[str | None, dict[str, Answer]],
) -> Measurement:
    """nginx serving, from files, the bytes the warm pass got for one reader (or first visit)."""
    floor_cookie = bench.probes["accept_all"].cookie_header if returning else None
    with nginx_from_files(
        warmed[floor_cookie], bench.workdir / "files", os.cpu_count() or 1
    ) as port:
        return bench.measure(port, key, "floor", run, once=False)


def through_gunicorn(
    bench: Bench, site_server: Server, bare_server: Server, run: int, key: str, *, once: bool
) -> dict[str, Measurement]:
    site = bench.measure(site_server.port, key, "site", run, once=once)
    site.memory = gunicorn_memory(site_server)
    floor = bench.measure(bare_server.port, key, "floor", run, once=once)
    floor.memory = gunicorn_memory(bare_server)
    return {"site": site, "floor": floor}


def one_run(
    bench: Bench, site_server: Server, bare_server: Server, run: int, with_nginx: bool = True
) -> dict[str, Any]:
    print(f"run {run}", flush=True)
    scenarios = {
        "first_visits": through_gunicorn(
            bench, site_server, bare_server, run, "first_visits", once=False
        ),
        "returning_readers": through_gunicorn(
            bench, site_server, bare_server, run, "returning_readers", once=True
        ),
    }
    if with_nginx:
        scenarios["first_visits_nginx"] = through_nginx(
            bench, site_server, run, "first_visits_nginx", returning=False
        )
        scenarios["returning_readers_nginx"] = through_nginx(
            bench, site_server, run, "returning_readers_nginx", returning=True
        )
    for key in ("consent", "beacon"):
        scenarios[key] = through_gunicorn(bench, site_server, bare_server, run, key, once=False)
    return {
        "run": run,
        "scenarios": {
            key: {side: result.as_json() for side, result in sides.items()}
            for key, sides in scenarios.items()
        },
    }


def soak(bench: Bench, site_server: Server) -> dict[str, Any]:
    """Many more connections: first visits for SOAK_SECONDS, and every reader once more."""
    print(f"soak: {SOAK_CONNECTIONS} connections", flush=True)
    found = {
        "first_visits": bench.measure(
            site_server.port,
            "first_visits",
            "site",
            "-soak",
            once=False,
            connections=SOAK_CONNECTIONS,
            seconds=SOAK_SECONDS,
        ),
        "returning_readers": bench.measure(
            site_server.port,
            "returning_readers",
            "site",
            "-soak",
            once=True,
            connections=SOAK_CONNECTIONS,
        ),
    }
    return {key: result.as_json() for key, result in found.items()}


def prepare(
    args: argparse.Namespace, workdir: Path, results: Path, site_server: Server
) -> tuple[Bench, dict[str, Any]]:
    """Find the pages, make the readers, capture the floor's bytes, write the request files."""
    base = f"http://127.0.0.1:{site_server.port}/"
    site = traffic.discover(fetcher(site_server.port), base, args.seed)
    print(f"{len(site.pages)} pages over {len(site.editions)} editions", flush=True)
    started = time.monotonic()
    readers = make_readers(site_server.port, traffic.choices(site, args.readers, args.seed))
    spent = time.monotonic() - started
    print(f"{len(readers):,} readers made in {spent:.0f} s ({len(readers) / spent:,.0f}/s)")
    probes = probe_readers(site_server.port, site)
    write_bare_pages(workdir / "bare-pages.json", site_server.port, site, probes["accept_all"])
    warm_site(site_server.port, site, probes, workers(site_server))
    files = request_files(workdir, site, readers, args.seed)
    bench = Bench(args, workdir, results, site, readers, probes, files)
    about = {
        "pages": list(site.pages),
        "editions": [
            {"root": e.root, "consent_action": e.consent_action, "categories": list(e.categories)}
            for e in site.editions
        ],
        "readers": {
            "count": len(readers),
            "kinds": dict(Counter(reader.kind for reader in readers).most_common()),
            "cookie_names": sorted({name for reader in readers for name in reader.cookies}),
            "seconds_to_make": round(spent, 1),
        },
    }
    return bench, about


def code_version() -> dict[str, Any]:
    def git(*command: str) -> str:
        return subprocess.run(
            ["git", *command], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    changes = git("status", "--porcelain", "--untracked-files=no", "--", "site", "templates")
    return {"commit": git("rev-parse", "HEAD"), "changes": bool(changes)}


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def results_folder(args: argparse.Namespace, database: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kinds = {"compare_workers": "workers-", "compare_metrics": "metrics-"}
    kinds["compare_nginx"] = "nginx-"
    kind = next((name for flag, name in kinds.items() if getattr(args, flag)), "")
    label = args.label or f"{kind}{database}"
    folder = args.results / f"{stamp}-{label}"
    folder.mkdir(parents=True)
    return folder


def database_kind() -> str:
    return (
        "postgresql"
        if os.environ.get("BENCH_DATABASE_URL", "").startswith("postgres")
        else "sqlite"
    )


def header(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    return {
        "format": 1,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "code": code_version(),
        "database": database_kind(),
        "gunicorn": settings_line(env),
        "wrk": {"threads": args.threads, "connections": args.connections, "seconds": args.seconds},
        "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "load_before": load_average()},
    }


def finish(summary: dict[str, Any], results: Path) -> None:
    summary["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary["machine"]["load_after"] = load_average()
    (results / report.SUMMARY).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


def side_by_side(args: argparse.Namespace, workdir: Path, results: Path) -> None:
    env = {**PROXY_FIX}
    summary = header(args, env)
    summary["gunicorn"] += ", FLASK_PROXY_FIX_X_* = 1"
    with gunicorn("wsgi:app", workdir / "site", env) as site_server:
        bench, about = prepare(args, workdir, results, site_server)
        summary.update(about)
        bare_env = {PAGES_VARIABLE: str(workdir / "bare-pages.json")}
        with gunicorn(BARE_APP, workdir / "bare", bare_env, ready_path="/") as bare:
            summary["runs"] = [
                one_run(bench, site_server, bare, run) for run in range(1, args.runs + 1)
            ]
            if args.soak:
                summary["soak"] = soak(bench, site_server)
            summary["memory_after_bench"] = {
                "site": gunicorn_memory(site_server),
                "floor": gunicorn_memory(bare),
            }
    finish(summary, results)
    print()
    for kind in ("summary", "memory"):
        print(report.RENDERERS[kind](summary))
    print(f"wrk's outputs and summary.json are in {results}")


WORKER_CHOICES = [
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "4"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "6"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "4"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"},
    {"GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "6"},
]


def compare_workers(args: argparse.Namespace, workdir: Path, results: Path) -> None:
    """The gunicorn scenarios under each worker set-up, the floor under the same set-up.

    The readers are made once, by the first set-up; every set-up then serves the same readers
    from the same database, each reader once per set-up. The site's own req/s are the figures
    to compare between set-ups: a ratio alone would hide a set-up that slows the floor too.
    """
    summary = header(args, WORKER_CHOICES[0])
    summary["setups"] = []
    bench: Bench | None = None
    for choice in WORKER_CHOICES:
        line = settings_line(choice)
        print(line, flush=True)
        with gunicorn("wsgi:app", workdir / "site", choice) as site_server:
            bench = bench_on(site_server, bench, args, workdir, results, summary)
            bare_env = {**choice, PAGES_VARIABLE: str(workdir / "bare-pages.json")}
            with gunicorn(BARE_APP, workdir / "bare", bare_env, ready_path="/") as bare:
                bench.raw_folder = re.sub(r"[^a-z0-9]+", "-", line.lower()).strip("-")
                run = one_run(bench, site_server, bare, 1, with_nginx=False)
                memory = gunicorn_memory(site_server)
        summary["setups"].append(
            {"gunicorn": line, "scenarios": run["scenarios"], "memory": memory}
        )
    finish(summary, results)
    print()
    print(report.workers_table(summary))


def bench_on(
    site_server: Server,
    bench: Bench | None,
    args: argparse.Namespace,
    workdir: Path,
    results: Path,
    summary: dict[str, Any],
) -> Bench:
    """The bench prepared on the first site a comparison starts (its readers made there,
    what it found kept in the summary), or the next site warmed with the same pages."""
    if bench is None:
        bench, about = prepare(args, workdir, results, site_server)
        summary.update(about)
    else:
        warm_site(site_server.port, bench.site, bench.probes, workers(site_server))
    return bench


METRICS_SETTINGS = {"on": "true", "off": "false"}
METRICS_SCENARIOS = {
    "first_visits": False,
    "returning_readers": True,
    "consent": False,
    "beacon": False,
}  # each scenario, and whether each request of it is sent once (returning readers)


def metrics_order(run: int) -> list[str]:
    """On first in odd runs, off first in even ones: neither side always meets a fresher
    machine, or a database with fewer rows."""
    return ["on", "off"] if run % 2 else ["off", "on"]


def compare_metrics(args: argparse.Namespace, workdir: Path, results: Path) -> None:
    """The gunicorn scenarios against the site with its metrics on (the default) and off
    (``FLASK_METRICS_ENABLED=false``), the two alternating within each run.

    Each run starts the site afresh under each setting and serves the same readers, each reader
    once per setting and run, from one database; the floor is not measured: the site without its
    metrics is the figure the metrics are weighed against.
    """
    summary = header(args, {})
    summary["metrics"] = {"settings": dict(METRICS_SETTINGS), "runs": []}
    bench: Bench | None = None
    for run in range(1, args.runs + 1):
        found: dict[str, dict[str, Any]] = {key: {} for key in METRICS_SCENARIOS}
        memory = {}
        for state in metrics_order(run):
            print(f"run {run}: metrics {state}", flush=True)
            env = {"FLASK_METRICS_ENABLED": METRICS_SETTINGS[state]}
            with gunicorn("wsgi:app", workdir / "site", env) as site_server:
                bench = bench_on(site_server, bench, args, workdir, results, summary)
                for key, once in METRICS_SCENARIOS.items():
                    before = site_cpu_seconds(site_server)
                    result = bench.measure(site_server.port, key, state, run, once=once)
                    used = cpu_us_per_answer(before, site_cpu_seconds(site_server), result.answered)
                    result.extra["site_cpu_us_per_answer"] = used
                    print(f"  {key:24} {state:5} site CPU {used} µs per answer", flush=True)
                    found[key][state] = result.as_json()
                memory[state] = gunicorn_memory(site_server)
        summary["metrics"]["runs"].append(
            {"run": run, "order": metrics_order(run), "scenarios": found, "memory": memory}
        )
    finish(summary, results)
    print()
    print(report.metrics_table(summary))


LOG_LINE = "access_log logs/access.log globalupdates buffer=64k flush=2s;"
LOGGED_NETWORK = "log_format globalupdates '$gu_client_network ["
LOGGED_ID = "'id=$request_id cache="
PROXIED_ID = "proxy_set_header X-Request-ID $request_id;"
ANSWERED_ID = (
    "add_header X-Cache-Status $upstream_cache_status always;\n"
    "        add_header X-Request-ID $request_id always;"
)
# Each variant of deploy/nginx.conf: what it changes, and the network its log lines open with
# for the measured requests (None: it keeps no log).
NGINX_VARIANTS: dict[str, tuple[dict[str, str], str | None]] = {
    "shipped": ({}, MEASURED_NETWORK),
    "whole_address": ({LOGGED_NETWORK: "log_format globalupdates '$remote_addr ["}, "127.0.0.1"),
    "no_request_id": (
        {
            LOGGED_ID: "'cache=",
            PROXIED_ID: "",
            ANSWERED_ID: "add_header X-Cache-Status $upstream_cache_status always;",
        },
        MEASURED_NETWORK,
    ),
    "no_access_log": ({LOG_LINE: "access_log off;"}, None),
}
NGINX_SCENARIOS = {"first_visits_nginx": False, "returning_readers_nginx": True}


def rotated(names: list[str], run: int) -> list[str]:
    """The variants in an order that starts one later each run."""
    shift = (run - 1) % len(names)
    return names[shift:] + names[:shift]


def compare_nginx(args: argparse.Namespace, workdir: Path, results: Path) -> None:
    """The two scenarios through deploy/nginx.conf as shipped and with one of its per-request
    parts left out each (the access log's network map, the request id, the access log), each
    with a fresh cache warmed as the main bench warms it, and the floor from files once per
    scenario and run; the variants' order rotates from run to run."""
    env = {**PROXY_FIX}
    summary = header(args, env)
    summary["gunicorn"] += ", FLASK_PROXY_FIX_X_* = 1"
    summary["nginx_variants"] = {"changes": {}, "runs": []}
    summary["nginx_variants"]["changes"] = {
        name: changes for name, (changes, _) in NGINX_VARIANTS.items()
    }
    with gunicorn("wsgi:app", workdir / "site", env) as site_server:
        bench, about = prepare(args, workdir, results, site_server)
        summary.update(about)
        for run in range(1, args.runs + 1):
            order = rotated(list(NGINX_VARIANTS), run)
            found: dict[str, dict[str, Any]] = {key: {} for key in NGINX_SCENARIOS}
            for key, returning in NGINX_SCENARIOS.items():
                warmed: dict[str | None, dict[str, Answer]] = {}
                for name in order:
                    changes, network = NGINX_VARIANTS[name]
                    print(f"run {run}: {key} {name}", flush=True)
                    site, warmed = nginx_site(
                        bench, site_server, run, key, returning, changes, name, network
                    )
                    found[key][name] = site.as_json()
                found[key]["floor"] = nginx_floor(bench, run, key, returning, warmed).as_json()
            summary["nginx_variants"]["runs"].append(
                {"run": run, "order": order, "scenarios": found}
            )
    finish(summary, results)
    print()
    print(report.nginx_variants_table(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each timed wrk run")
    parser.add_argument("--readers", type=int, default=50_000, help="distinct returning readers")
    parser.add_argument("--runs", type=int, default=2, help="times the whole sequence runs")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--seed", type=int, default=1, help="seeds every shuffle and choice")
    parser.add_argument("--label", help="the results folder's name after the time")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--soak", action="store_true", help=f"then {SOAK_CONNECTIONS} connections on the site"
    )
    parser.add_argument("--compare-workers", action="store_true")
    parser.add_argument(
        "--compare-metrics", action="store_true", help="the site with metrics on and off"
    )
    parser.add_argument(
        "--compare-nginx",
        action="store_true",
        help="deploy/nginx.conf as shipped and without each per-request part",
    )
    args = parser.parse_args()
    require_tools()
    results = results_folder(args, database_kind())
    print(f"results: {results}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gu-bench-") as folder:
        workdir = Path(folder)
        workdir.chmod(0o755)
        if args.compare_workers:
            compare_workers(args, workdir, results)
        elif args.compare_metrics:
            compare_metrics(args, workdir, results)
        elif args.compare_nginx:
            compare_nginx(args, workdir, results)
        else:
            side_by_side(args, workdir, results)


if __name__ == "__main__":
    main()
