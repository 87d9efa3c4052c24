"""A private redis-server for one test, on a free loopback port, that the test can stop outright
or freeze (SIGSTOP: the kernel still accepts connections, but nothing ever answers)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port, stop_process_group

START_SECONDS = 10


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Gone: connections are refused from now on."""
        stop_process_group(self.process, signal.SIGTERM, 5)

    def freeze(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)


def wait_until_listening(server: RedisServer) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {server.process.returncode}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 0.5) as conn:
            conn.sendall(b"PING\r\n")
            if conn.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {server.port}")


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """Debian's redis-server, keeping nothing on disk; thawed and stopped when the block ends."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test-tools installs it)"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    process = subprocess.Popen(
        [*command, "no", "--dir", str(folder), "--logfile", str(folder / "redis.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RedisServer(port=port, process=process)
    try:
        wait_until_listening(server)
        yield server
    finally:
        with suppress(ProcessLookupError):
            server.thaw()
        if process.poll() is None:
            stop_process_group(process, signal.SIGTERM, 5)
