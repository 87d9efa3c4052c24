"""A slow network in front of the site: a loopback HTTP relay that sends each HTML page up to a
chosen piece of markup and holds the rest back until the test releases it.

A browser paints what it has parsed once its stylesheet has arrived, so a page held back in
the middle shows the reader that part first: what a phone on a poor connection, or one too
busy to parse the page in one go, would show. Everything else (stylesheets, scripts) is relayed
at once. Only GET is relayed, which is all a page load without a choice needs.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that describe one hop's connection and body, which the relay makes its own.
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
}


@dataclass
class Stall:
    """Where each HTML page is held back: before the first ``markup``, until ``release`` (or,
    should a test never release it, for ``longest`` seconds)."""

    markup: str
    longest: float = 30.0
    held_back: int = 0  # how many pages were held back there
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


def relay_handler(upstream_port: int, stall: Stall) -> type[BaseHTTPRequestHandler]:
    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status, headers, body = fetch_upstream(upstream_port, self.path, self.headers.items())
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.send_body(body, is_page(headers))

        def send_body(self, body: bytes, page: bool) -> None:
            cut = body.find(stall.markup.encode()) if page else -1
            if cut <= 0:
                self.wfile.write(body)
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            stall.held_back += 1
            stall.released.wait(stall.longest)
            self.wfile.write(body[cut:])

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Relay


def is_page(headers: list[tuple[str, str]]) -> bool:
    return any(
        name.lower() == "content-type" and value.startswith("text/html") for name, value in headers
    )


def fetch_upstream(
    port: int, path: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The site's whole answer, asked for without compression so the markup can be found."""
    sent = {
        name: value
        for name, value in headers
        if name.lower() not in HOP_HEADERS | {"accept-encoding", "host"}
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=sent)
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        connection.close()


@contextmanager
def stalling_network(upstream_port: int, stall: Stall) -> Iterator[str]:
    """The relay's base URL while the ``with`` block runs; it is shut down when it ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), relay_handler(upstream_port, stall))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
