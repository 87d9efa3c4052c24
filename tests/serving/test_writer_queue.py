"""SQLite writers take turns on a lock file, across threads and across worker processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine

from globalupdates.database import one_writer, tune_sqlite

HOLD_SECONDS = 0.5


def sqlite_engine(path: Path):
    engine = create_engine(f"sqlite:///{path}")
    tune_sqlite(engine)
    return engine


def hold_the_turn(path: str, held: multiprocessing.synchronize.Event) -> None:
    with one_writer(sqlite_engine(Path(path))):
        held.set()
        time.sleep(HOLD_SECONDS)


def seconds_waited_behind_another_process(database: Path, engine) -> float:
    """How long this process waits for its turn while another process holds one."""
    context = multiprocessing.get_context("fork")
    held = context.Event()
    other = context.Process(target=hold_the_turn, args=(str(database), held))
    other.start()
    assert held.wait(10)
    started = time.monotonic()
    with one_writer(engine):
        waited = time.monotonic() - started
    other.join(10)
    return waited


def test_a_writer_in_another_process_waits_for_its_turn(tmp_path):
    database = tmp_path / "queue.sqlite3"
    waited = seconds_waited_behind_another_process(database, sqlite_engine(database))
    assert waited >= HOLD_SECONDS * 0.6


def test_writers_queue_on_the_lock_file_at_the_path_after_it_was_removed(tmp_path: Path):
    database = tmp_path / "queue.sqlite3"
    engine = sqlite_engine(database)
    with one_writer(engine):
        pass
    Path(f"{database}.writers").unlink()
    waited = seconds_waited_behind_another_process(database, engine)
    assert waited >= HOLD_SECONDS * 0.6, "this process queued on the removed lock file"


def test_writers_in_one_process_take_turns(tmp_path):
    engine = sqlite_engine(tmp_path / "queue.sqlite3")
    inside = []
    overlaps = []

    def write() -> None:
        with one_writer(engine):
            if inside:
                overlaps.append(True)
            inside.append(True)
            time.sleep(0.02)
            inside.pop()

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
