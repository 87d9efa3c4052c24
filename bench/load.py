"""wrk with bench/requests.lua: the requests of a file, each thread its own slice.

``once``: every line is sent at most once; each thread stops when its slice is used up, and wrk
is ended (SIGINT, after which it prints its report) once every thread has stopped, so the
figures cover the real duration. ``cycle``: the threads go round their slices for ``seconds``.
Either way the rate is the answers counted while every wrk thread was running ("full load",
timed by the script in 50 ms buckets), over that time; the whole run's rate (first request to
last answer) is kept beside it. wrk's whole standard output is kept in ``raw``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "requests.lua"
REPORT_PREFIX = "BENCH-JSON "
# A run in "once" mode ends when its lines are used up; this only bounds a run that hangs.
ONCE_LIMIT_SECONDS = 600
# Below this, the time every thread ran is too short to measure by; the whole run counts.
SHORTEST_FULL_LOAD_SECONDS = 0.5


@dataclass
class Measurement:
    requests_per_second: float
    answered: int
    seconds: float
    whole_run_per_second: float
    full_load_seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bytes_per_answer: float
    statuses: dict[str, int]
    errors: dict[str, int]
    raw: str  # the file holding wrk's output, relative to the results folder
    memory: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def measurement(report: dict[str, Any], raw: str) -> Measurement:
    statuses: dict[str, int] = {}
    for thread in report["threads"]:
        for status, count in thread["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    seconds = report["seconds"]
    answered = report["answered"]
    whole = answered / seconds if seconds else 0.0
    full_seconds = report["full_load_seconds"]
    if full_seconds >= SHORTEST_FULL_LOAD_SECONDS:
        rate = report["full_load_answered"] / full_seconds
    else:
        rate = whole
    return Measurement(
        requests_per_second=round(rate, 1),
        answered=answered,
        seconds=round(seconds, 3),
        whole_run_per_second=round(whole, 1),
        full_load_seconds=full_seconds,
        p50_ms=report["p50_us"] / 1000,
        p90_ms=report["p90_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        max_ms=report["max_us"] / 1000,
        bytes_per_answer=report["bytes"] / answered if answered else 0.0,
        statuses=dict(sorted(statuses.items())),
        errors={kind: count for kind, count in report["errors"].items() if count},
        raw=raw,
    )


def parse_report(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(REPORT_PREFIX):
            return dict(json.loads(line.removeprefix(REPORT_PREFIX)))
    raise RuntimeError(f"wrk printed no {REPORT_PREFIX.strip()} line:\n{output[-2000:]}")


def wait_for_threads(process: subprocess.Popen[bytes], done: Path, threads: int) -> None:
    deadline = time.monotonic() + ONCE_LIMIT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        if len(list(done.iterdir())) >= threads:
            process.send_signal(signal.SIGINT)
            return
        time.sleep(0.02)


def run_wrk(
    port: int,
    requests: Path,
    *,
    once: bool,
    seconds: int,
    threads: int,
    connections: int,
    raw: Path,
    results: Path,
) -> Measurement:
    """Run wrk against 127.0.0.1:``port``; its output goes to ``raw`` (inside ``results``)."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gu-wrk-") as done_dir:
        environment = {
            **os.environ,
            "BENCH_REQUESTS": str(requests),
            "BENCH_THREADS": str(threads),
            "BENCH_MODE": "once" if once else "cycle",
            "BENCH_DONE_DIR": done_dir,
        }
        duration = ONCE_LIMIT_SECONDS if once else seconds
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
        command += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}/"]
        with raw.open("wb") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=environment
            )
            try:
                if once:
                    wait_for_threads(process, Path(done_dir), threads)
                process.wait(timeout=duration + 60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    text = raw.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{text[-2000:]}")
    return measurement(parse_report(text), raw.relative_to(results).as_posix())
