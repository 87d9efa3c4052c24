from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def tune_sqlite(engine: Engine) -> None:
    """WAL lets readers work while a writer commits; the busy timeout makes writers queue,
    and the site's own writes queue on a lock file first (``one_writer``)."""
    database = engine.url.database
    if database and database != ":memory:":
        WRITER_QUEUES.setdefault(database, WriterQueue(database))

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


WRITER_QUEUES: dict[str, WriterQueue] = {}


class WriterQueue:
    """One writer at a time on a SQLite file, across threads and worker processes.

    SQLite lets one writer in and makes the others retry after sleeps of up to 100 ms
    (its busy handler), so under load most of a write's time was spent asleep. Writers
    queue here instead, on a lock file beside the database: the kernel wakes the next one
    the moment the lock is released.
    """

    def __init__(self, database: str) -> None:
        self.path = f"{database}.writers"
        self.thread_lock = threading.Lock()
        self.handle: Any = None
        self.handle_pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this process's turn, then the machine's. If the lock file cannot be
        opened (its folder is gone), SQLite's own locking still keeps writes apart."""
        with self.thread_lock:
            handle = self.lock_file()
            if handle is None:
                yield
                return
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lock_file(self) -> Any:
        """The lock file, opened once per process (a worker must not share its master's)."""
        if self.handle is None or self.handle_pid != os.getpid():
            try:
                self.handle = open(self.path, "a")  # noqa: SIM115 - kept open for the process
            except OSError:
                return None
            self.handle_pid = os.getpid()
        return self.handle


@contextmanager
def one_writer(engine: Engine) -> Iterator[None]:
    """Serialise a write transaction on SQLite (see ``WriterQueue``); PostgreSQL needs nothing."""
    queue = (
        WRITER_QUEUES.get(engine.url.database or "") if engine.dialect.name == "sqlite" else None
    )
    if queue is None:
        yield
        return
    with queue.turn():
        yield
