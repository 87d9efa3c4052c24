"""The server launchers keep their word: nothing they started outlives them, and a server that
cannot start says why."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.gunicorn_server import running_gunicorn
from tests.support.servers import stop_process_group

TWO_WORKERS = {"WEB_CONCURRENCY": "2"}
# A leader and a child that both ignore SIGTERM, as a wedged server would.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
subprocess.Popen(child)
print("ready", flush=True)
time.sleep(60)
"""


def site_database(migrated_sqlite: Path, folder: Path) -> str:
    path = folder / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


def group_is_gone(group: int, timeout: float = 5) -> bool:
    """Whether no process of ``group`` is left (a killed child may take a moment to reap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_period():
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    started = time.monotonic()
    stop_process_group(process, signal.SIGTERM, grace=0.5)
    assert 0.5 <= time.monotonic() - started < 10
    assert process.returncode == -signal.SIGKILL
    assert group_is_gone(process.pid)
    process.stdout.close()


@pytest.mark.slow
def test_leaving_running_gunicorn_stops_the_master_and_every_worker(
    migrated_sqlite: Path, tmp_path: Path
):
    with running_gunicorn(
        site_database(migrated_sqlite, tmp_path), tmp_path, TWO_WORKERS
    ) as server:
        assert server.get("/healthz")[0] == 200
        workers = server.wait_for_workers(2)
    assert server.process.returncode is not None
    assert group_is_gone(server.master_pid)
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "Booting worker" in server.log.read_text()


@pytest.mark.slow
def test_a_gunicorn_that_cannot_start_fails_with_its_log(migrated_sqlite: Path, tmp_path: Path):
    database = site_database(migrated_sqlite, tmp_path)
    with (
        pytest.raises(RuntimeError, match="gunicorn exited") as failure,
        running_gunicorn(database, tmp_path, app="no_such_module:app"),
    ):
        pass
    assert "no_such_module" in str(failure.value)
