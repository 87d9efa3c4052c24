"""A loopback TCP relay in front of the database, which a test can cut and restore.

While cut, every open connection is closed and new ones are closed as soon as they are
accepted: to the site, the database has gone away. Restored, it relays again.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class CuttableRelay:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.cut_off = threading.Event()
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.open_sockets: set[socket.socket] = set()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> CuttableRelay:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.listener.close()
        self._close_all()
        self.thread.join(timeout=5)

    def cut(self) -> None:
        self.cut_off.set()
        self._close_all()

    def restore(self) -> None:
        self.cut_off.clear()

    def _close_all(self) -> None:
        with self.lock:
            for sock in self.open_sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.open_sockets.clear()

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.open_sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                target.sendall(chunk)
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
