"""SQLite after a read-only episode: the database and its WAL made immutable (``chattr +i``)
under the running site, then writable again. Choices are refused with a 503 meanwhile, and
are stored again within seconds after, without a restart: no connection opened read-only
during the episode stays in a pool."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.serving.test_database_outages import post_choice, stored_choices
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.pages import ARTICLE

WORKERS = 2
CONCURRENT = 8  # more than a worker's threads, so that each worker opens more connections
RECOVERY_SECONDS = 3.0


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i`` on ``paths`` for the block (root's file modes do not stop root; the
    immutable flag does), and ``chattr -i`` whatever happens."""
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def burst(server: Server, label: str) -> list[int]:
    """Choices and pages that must each build from the database, all at once."""
    with ThreadPoolExecutor(CONCURRENT) as pool:
        choices = [pool.submit(post_choice, server) for _ in range(CONCURRENT)]
        pages = [pool.submit(server.get, f"{ARTICLE}?{label}={n}", 10) for n in range(CONCURRENT)]
        for page in pages:
            assert page.result()[0] in (200, 503)
        return [choice.result() for choice in choices]


@pytest.mark.slow
def test_choices_are_stored_again_within_seconds_of_the_file_becoming_writable(
    migrated_sqlite: Path, tmp_path: Path
):
    path = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    with running_gunicorn(
        f"sqlite:///{path}", tmp_path, {"WEB_CONCURRENCY": str(WORKERS)}
    ) as server:
        server.wait_for_workers(WORKERS)
        assert burst(server, "before") == [303] * CONCURRENT
        stored_before = stored_choices(path)
        wal = Path(f"{path}-wal")
        assert wal.exists(), "the site keeps its database in WAL mode"

        with immutable(path, wal):
            for round_ in range(3):
                assert set(burst(server, f"during{round_}")) == {503}
            server.wait_for_status("/healthz", 503)
        made_writable = time.monotonic()

        server.wait_for_status("/healthz", 200, timeout=RECOVERY_SECONDS)
        assert time.monotonic() - made_writable <= RECOVERY_SECONDS
        answers = [status for round_ in range(4) for status in burst(server, f"after{round_}")]
        assert answers == [303] * len(answers), "a connection opened read-only is still pooled"
        assert stored_choices(path) == stored_before + len(answers)
    assert "Traceback" not in server.log_text()
