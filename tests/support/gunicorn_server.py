"""The site under real gunicorn on a free loopback port, started and stopped by the test."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from globalupdates.config import PROJECT_ROOT

GUNICORN = Path(sys.executable).parent / "gunicorn"
SECRET_KEY = "gunicorn-test-secret-not-for-production"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def master_pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Accept": "text/html"})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def wait_for_workers(
        self, count: int, exclude: AbstractSet[int] = frozenset(), timeout: float = 30
    ) -> set[int]:
        """Wait until ``count`` workers run and none of ``exclude`` is among them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count and not pids & exclude:
                return pids
            time.sleep(0.1)
        raise AssertionError(f"workers are {self.worker_pids()}, wanted {count} new ones")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def server_environment(database_uri: str, instance: Path, port: int, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "FLASK_SQLALCHEMY_DATABASE_URI": database_uri,
            "FLASK_INSTANCE_PATH": str(instance),
            "FLASK_SECRET_KEY": SECRET_KEY,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ACCESSLOG": "",
            "GUNICORN_LOGLEVEL": "info",
        }
    )
    env.update(extra)
    return env


def wait_until_answering(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited early:\n{server.log_text()}")
        try:
            status, _ = server.get("/healthz", timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer within {timeout} s:\n{server.log_text()}")


@contextmanager
def running_gunicorn(database_uri: str, folder: Path, **env: str) -> Iterator[Server]:
    """gunicorn with the project's gunicorn.conf.py; extra environment overrides it."""
    port = free_port()
    log = folder / "gunicorn.log"
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", str(PROJECT_ROOT / "gunicorn.conf.py")],
            cwd=PROJECT_ROOT,
            env=server_environment(database_uri, folder / "instance", port, **env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(port=port, process=process, log=log)
    try:
        wait_until_answering(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
