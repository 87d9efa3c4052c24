from __future__ import annotations

import atexit
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DisconnectionError

FileIdentity = tuple[int, int]
TRUE_WORDS = ("1", "true", "yes", "on", "t", "y")


ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


class WriteBatchFailed(Exception):
    """Writes committed together as one transaction failed, and none of them was stored
    (the site answers ``503``: a reader can send the choice again)."""


def engine_options(database_uri: str, configured: dict[str, Any]) -> dict[str, Any]:
    """The engine options, with ``pool_pre_ping`` decided by the database unless set.

    A pooled connection to a database server dies when the server restarts or fails over;
    the ping (one round trip at each checkout) finds that before a request uses it, so the
    first choices after a restart are stored instead of answered 503. A SQLite connection
    does not die that way: a removed or replaced file is caught at checkout by
    ``DatabaseFile``, and a ping would pass on a connection to a deleted file anyway.
    """
    options = dict(configured)
    # An error's message then names the statement without its values (a consent id among
    # them), so a logged error never names a reader.
    options.setdefault("hide_parameters", True)
    options.setdefault("pool_pre_ping", not database_uri.startswith("sqlite"))
    return options


def error_summary(error: BaseException) -> str:
    """The first line of what went wrong, for a log line or a command's error: the driver's
    own message where SQLAlchemy wrapped one, without the statement and link it adds."""
    message = str(getattr(error, "orig", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def tune_sqlite(engine: Engine) -> None:
    """WAL lets readers work while a writer commits; the busy timeout makes writers queue,
    and the site's own writes queue on a lock file first (``one_writer``). Connections are
    kept on the file at the configured path (``DatabaseFile``).

    ``synchronous=FULL`` makes every commit wait for the WAL to reach the disk (fsync), so a
    choice that got its answer survives a power cut or a kernel crash, not only a killed
    process (WAL's usual ``NORMAL`` gives only the latter). Choices are committed in groups
    (``consent.proof.chain``), so the fsync is paid once per group, not once per choice.
    """
    path = sqlite_file_path(engine.url)
    if path is not None:
        WRITER_QUEUES.setdefault(engine.url.database or "", WriterQueue(path))
        DatabaseFile(path).watch(engine)

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def sqlite_file_path(url: URL) -> str | None:
    """The file a SQLite URL names, also when it is given as a SQLite URI
    (``sqlite:///file:/srv/site.db?mode=ro&uri=true``); None for an in-memory database."""
    database = url.database or ""
    if database.startswith("file:") and str(url.query.get("uri", "")).lower() in TRUE_WORDS:
        if url.query.get("mode") == "memory":
            return None
        database = unquote(urlsplit(database).path)
    if database in ("", ":memory:"):
        return None
    return database


def file_identity(path: str) -> FileIdentity | None:
    """The device and inode of whatever is at ``path`` now, or None when nothing is."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


class DatabaseFile:
    """Keeps every connection on the file that is at the configured path now.

    An open SQLite connection holds on to the file it opened: if that file is removed or
    replaced (a volume remounted, a backup restored), it goes on writing to the old one
    and every choice it stores is lost with it. So each connection remembers the file it
    opened, and is discarded at checkout when that is no longer the file at the path.

    A connection opened while the file (or its WAL) could not be written, as when it was made
    immutable (``chattr +i``), is read-only for its whole life: SQLite falls back to opening
    it so. Such a connection is noted, and discarded at checkout once the file takes writes
    again; and any connection whose write SQLite refuses as read-only (``SQLITE_READONLY``)
    is treated as disconnected, which empties the pool. So the site writes again as soon as
    the file does, without a restart.

    And once the file has been seen, a missing file is an outage, not a fresh start:
    ``sqlite3.connect`` would create an empty database there and the site would answer on
    it. Only a process that never saw the file (``flask prepare`` on a new site, the
    tests) may create one.
    """

    IDENTITY = "database_file_identity"
    READ_ONLY = "database_opened_read_only"

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen = file_identity(path) is not None

    def watch(self, engine: Engine) -> None:
        event.listen(engine, "do_connect", self.refuse_to_create)
        event.listen(engine, "connect", self.remember_file)
        event.listen(engine, "checkout", self.check_same_file)
        event.listen(engine, "handle_error", discard_read_only_connections)

    def refuse_to_create(self, dialect: Any, _record: Any, _args: Any, _params: Any) -> None:
        if self.seen and file_identity(self.path) is None:
            raise dialect.loaded_dbapi.OperationalError(
                f"unable to open database file: {self.path} is missing (restore it, or run "
                "`flask prepare` to make a new one); an empty database is not created in its place"
            )

    def remember_file(self, _dbapi_connection: Any, record: Any) -> None:
        identity = file_identity(self.path)
        record.info[self.IDENTITY] = identity
        record.info[self.READ_ONLY] = identity is not None and not self.writable()
        if identity is not None:
            self.seen = True

    def check_same_file(self, _dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get(self.IDENTITY) != file_identity(self.path):
            raise DisconnectionError(f"{self.path} is no longer the file this connection opened")
        if record.info.get(self.READ_ONLY) and self.writable():
            raise DisconnectionError(
                f"{self.path} takes writes again; this connection had opened it read-only"
            )

    def writable(self) -> bool:
        """Whether this process may write the database file and its WAL (when there is one)."""
        wal = f"{self.path}-wal"
        return os.access(self.path, os.W_OK) and (
            not os.path.exists(wal) or os.access(wal, os.W_OK)
        )


def discard_read_only_connections(context: Any) -> None:
    """A write refused because the connection is read-only: discard it and every other
    connection of the pool, which may have been opened in the same read-only episode."""
    name = getattr(context.original_exception, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY"):
        context.is_disconnect = True


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
        """The lock file, opened once per process (a worker must not share its master's),
        and again when the file at the path is no longer the one open: the processes that
        queue on a removed file would not meet those that queue on its successor."""
        if self.handle is not None and self.handle_pid == os.getpid():
            if file_identity(self.path) == self.open_identity():
                return self.handle
            self.handle.close()
            self.handle = None
        try:
            self.handle = open(self.path, "a")  # noqa: SIM115 - kept open for the process
        except OSError:
            self.handle = None
            return None
        self.handle_pid = os.getpid()
        return self.handle

    def open_identity(self) -> FileIdentity:
        status = os.fstat(self.handle.fileno())
        return status.st_dev, status.st_ino


@atexit.register
def close_writer_queues() -> None:
    """The lock files are kept open for the life of the process; close them at its end."""
    for queue in WRITER_QUEUES.values():
        if queue.handle is not None and queue.handle_pid == os.getpid():
            queue.handle.close()
            queue.handle = None


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


def lock_for_writing(connection: Connection, postgres_key: int) -> None:
    """Hold the database's write lock for the rest of this transaction: SQLite's own (``BEGIN
    IMMEDIATE``: one writer at a time), or on PostgreSQL the advisory lock ``postgres_key``,
    which only the writers that must not interleave take. Statements after this one see
    everything committed before the lock was granted."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.execute(ADVISORY_LOCK, {"key": postgres_key})
    else:
        raise RuntimeError(f"no write lock for the {dialect} database")


@contextmanager
def locked_transaction(engine: Engine, postgres_key: int) -> Iterator[Connection]:
    """A connection holding the write lock (``lock_for_writing``), after its turn in the
    writers' queue on SQLite; the block commits. If anything in it fails, the connection is
    discarded, not returned to the pool: whatever state the failure left it in (a transaction
    still open and holding the lock, say) must not reach the next writer."""
    with one_writer(engine), engine.connect() as connection:
        try:
            lock_for_writing(connection, postgres_key)
            yield connection
        except BaseException:
            connection.invalidate()
            raise
