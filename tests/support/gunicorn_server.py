"""The one way the tests and the bench start gunicorn: the project's gunicorn.conf.py (or
another WSGI app under it) on a free loopback port, in a process group of its own.

gunicorn's ``on_starting`` hook migrates the database and imports the demo articles, so the
site is ready once its readiness path answers 200. Leaving the ``with`` block stops the whole
group: SIGTERM first, which lets requests finish, and SIGKILL once ``STOP_SECONDS`` have gone
by. Everything gunicorn writes goes to ``gunicorn.log`` in the given folder, which is kept, so
a failure can show it.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from globalupdates.config import PROJECT_ROOT
from tests.support.servers import free_port, stop_process_group

SECRET_KEY = "gunicorn-test-secret-not-for-production"
STARTUP_SECONDS = 60
STOP_SECONDS = 30
# What a shell exports for running the site by hand; the servers started here are configured
# by gunicorn.conf.py and by what their caller passes, nothing else.
INHERITED_PREFIXES_DROPPED = ("FLASK_", "GUNICORN_")
INHERITED_NAMES_DROPPED = {"WEB_CONCURRENCY", "PORT", "PROMETHEUS_MULTIPROC_DIR"}


@dataclass(frozen=True)
class Tls:
    """A certificate and key for gunicorn to serve HTTPS with, and the authority that signed
    them, which the readiness check (and ``Server.get``) trusts."""

    certificate: Path
    key: Path
    authority: Path


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    tls: Tls | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children")
        return {int(pid) for pid in children.read_text().split()}

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

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.tls is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        context = ssl.create_default_context(cafile=str(self.tls.authority))
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=context)

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        """GET ``path`` as a browser asking for a page would; the status and the text."""
        conn = self.connection(timeout)
        try:
            conn.request("GET", path, headers={"Accept": "text/html"})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    def wait_for_status(self, path: str, status: int, timeout: float = 5) -> str:
        """GET ``path`` every 0.1 s until it answers ``status`` (a health check answers from a
        probe up to a second old); the body of that answer."""
        deadline = time.monotonic() + timeout
        while True:
            answer, body = self.get(path)
            if answer == status:
                return body
            assert time.monotonic() < deadline, f"{path} still answers {answer} after {timeout} s"
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def inherited_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(INHERITED_PREFIXES_DROPPED) and name not in INHERITED_NAMES_DROPPED
    }


def server_environment(
    database_uri: str, folder: Path, port: int, settings: Mapping[str, str]
) -> dict[str, str]:
    return {
        **inherited_environment(),
        "FLASK_SQLALCHEMY_DATABASE_URI": database_uri,
        "FLASK_INSTANCE_PATH": str(folder / "instance"),
        "FLASK_SECRET_KEY": SECRET_KEY,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESSLOG": "",
        "GUNICORN_LOGLEVEL": "info",
        **settings,
    }


def gunicorn_command(app: str | None, tls: Tls | None) -> list[str]:
    command = [sys.executable, "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py")]
    if tls is not None:
        command += ["--certfile", str(tls.certificate), "--keyfile", str(tls.key)]
    return command + ([app] if app else [])


def wait_until_ready(server: Server, path: str, timeout: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.process.returncode}:\n{server.log_text()}"
            )
        with suppress(OSError, http.client.HTTPException):
            if server.get(path, timeout=2)[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer {path} within {timeout} s:\n{server.log_text()}")


@contextmanager
def running_gunicorn(
    database_uri: str,
    folder: Path,
    settings: Mapping[str, str] | None = None,
    *,
    app: str | None = None,
    tls: Tls | None = None,
    ready_path: str = "/healthz",
    port: int | None = None,
) -> Iterator[Server]:
    """gunicorn on ``database_uri`` with its instance folder and log in ``folder``.

    ``settings`` are environment variables over the defaults here (``WEB_CONCURRENCY``,
    ``FLASK_RATELIMIT_...``); ``app`` replaces the config's ``wsgi:app`` (the bench's bare
    app, whose readiness path is ``/``); ``tls`` serves HTTPS; ``port`` is a free one unless
    given (a second site on the port of one that stopped, behind the same proxy).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = folder / "gunicorn.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            gunicorn_command(app, tls),
            cwd=PROJECT_ROOT,
            env=server_environment(database_uri, folder, port, settings or {}),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(port=port, process=process, log=log, tls=tls)
    try:
        wait_until_ready(server, ready_path)
        yield server
    finally:
        stop_process_group(process, signal.SIGTERM, STOP_SECONDS)
