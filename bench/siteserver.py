"""Serve Global Updates under gunicorn on a free loopback port, on a throwaway instance folder
and SQLite database, for the browser tests and the bench scripts.

gunicorn's ``on_starting`` hook migrates the new database and imports the demo articles,
so the site is ready as soon as ``/healthz`` answers.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 60


@dataclass(frozen=True)
class ServedSite:
    base_url: str
    database: Path
    log: Path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(workdir: Path, port: int, workers: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update(
        FLASK_INSTANCE_PATH=str(workdir / "instance"),
        FLASK_SECRET_KEY=secrets.token_hex(32),
        FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{workdir / 'site.sqlite3'}",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(workers),
        GUNICORN_ACCESSLOG="-",
        GUNICORN_ERRORLOG="-",
    )
    return env


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask the gunicorn master to stop gracefully; kill its process group if it will not."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=25)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextmanager
def served_site(workdir: Path, *, workers: int = 2) -> Iterator[ServedSite]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    log = workdir / "gunicorn.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=PROJECT_ROOT,
            env=server_environment(workdir, port, workers),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(base_url, process, log)
            yield ServedSite(base_url=base_url, database=workdir / "site.sqlite3", log=log)
        finally:
            stop(process)
