"""Clients that open a connection and send a request's headers a line at a time, never ending
them: what a slow-header ("slowloris") attack does to hold a server's connections."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class SlowHeaderClient:
    sock: socket.socket
    lines_sent: int = 0
    closed: bool = field(default=False)

    def drip(self) -> None:
        """One more header line, unless the server has closed the connection."""
        if self.is_closed():
            return
        try:
            self.sock.sendall(f"X-Slow-{self.lines_sent}: x\r\n".encode())
            self.lines_sent += 1
        except OSError:
            self.closed = True

    def is_closed(self) -> bool:
        """Whether the server closed the connection (an end of stream, a reset, or anything it
        answered before closing: it never gets a whole request)."""
        if self.closed:
            return True
        try:
            self.sock.recv(4096, socket.MSG_DONTWAIT)
            self.closed = True
        except BlockingIOError:
            return False
        except OSError:
            self.closed = True
        return self.closed


def open_slow_header_client(port: int) -> SlowHeaderClient:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(None)  # blocking, so that a MSG_DONTWAIT read never waits
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return SlowHeaderClient(sock)


@contextmanager
def slow_header_clients(port: int, count: int) -> Iterator[list[SlowHeaderClient]]:
    """``count`` connections to ``port`` holding a request's headers open; closed at the end."""
    clients: list[SlowHeaderClient] = []
    try:
        for _ in range(count):
            clients.append(open_slow_header_client(port))
        yield clients
    finally:
        for client in clients:
            client.sock.close()
