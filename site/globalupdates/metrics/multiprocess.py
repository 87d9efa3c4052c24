"""The gunicorn workers' metric files (prometheus_client's multiprocess mode), kept bounded.

Each worker writes its values to files named after its pid in ``PROMETHEUS_MULTIPROC_DIR``;
a scrape reads them all. A worker that exits (``max_requests``, a ``HUP``, a crash) would leave
its counter and histogram files behind for good, and a scrape reads every file ever left: after
thousands of restarts, seconds per scrape. So when gunicorn's master reaps a worker
(``child_exit`` in gunicorn.conf.py), ``retire_worker`` drops its live gauges, as
``prometheus_client.multiprocess.mark_process_dead`` does, and adds its counters and histograms
into one archive file per type, then removes its files: the directory holds the live workers'
files and two archives, however many workers came and went, and no total goes backwards.

The archive and the dead worker's file change together under an exclusive lock of the
directory, and a scrape reads under a shared one (``reading``), so no scrape counts a dead
worker twice or not at all.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import mark_process_dead

ARCHIVED_TYPES = ("counter", "histogram")
LOCK_FILE = "merge.lock"  # not a *.db file, so the collector never reads it


@contextmanager
def directory_lock(directory: Path, operation: int) -> Iterator[None]:
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, operation)
        yield
    finally:
        os.close(descriptor)


def reading(directory: str | Path) -> AbstractContextManager[None]:
    """Hold off ``retire_worker`` while a scrape reads the files."""
    return directory_lock(Path(directory), fcntl.LOCK_SH)


def empty_directory(directory: Path) -> None:
    """Start afresh: remove whatever an earlier run of the site left in the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        if path.is_file() or path.is_symlink():
            path.unlink()


def retire_worker(directory: Path, pid: int) -> None:
    """Fold an exited worker's counters and histograms into the archives; drop its files."""
    with directory_lock(directory, fcntl.LOCK_EX):
        mark_process_dead(pid, str(directory))
        for kind in ARCHIVED_TYPES:
            dead = directory / f"{kind}_{pid}.db"
            if dead.exists():
                add_into_archive(dead, directory / f"{kind}_archive.db")
                dead.unlink()


def add_into_archive(dead: Path, archive_path: Path) -> None:
    archive = MmapedDict(str(archive_path))
    try:
        for key, value, timestamp, _position in MmapedDict.read_all_values_from_file(str(dead)):
            total, _ = archive.read_value(key)
            archive.write_value(key, total + value, timestamp)
    finally:
        archive.close()
