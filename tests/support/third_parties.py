"""Third parties for the cookie audit's tests: small HTTPS servers on loopback, each its own
origin, serving fixed files (a tracking script, a collector that answers anything)."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Certificate:
    certificate: Path
    key: Path


def self_signed_certificate(folder: Path) -> Certificate:
    """A throwaway certificate for 127.0.0.1, trusted by nobody: the audit's --insecure."""
    certificate, key = folder / "third-party.crt", folder / "third-party.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )
    return Certificate(certificate, key)


@dataclass
class ThirdParty:
    server: ThreadingHTTPServer
    requested: list[str]

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"


def handler_for(files: Mapping[str, str], requested: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            requested.append(self.path)
            body = files.get(self.path.split("?", 1)[0], "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def third_party(
    certificate: Certificate, files: Mapping[str, str] | None = None
) -> Iterator[ThirdParty]:
    """An HTTPS origin on a free loopback port, serving ``files`` (path to text), stopped on
    leaving."""
    requested: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(files or {}, requested))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate.certificate, certificate.key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ThirdParty(server, requested)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}


def injecting_handler(upstream: int, script: str) -> type[BaseHTTPRequestHandler]:
    """Relays to the site on ``upstream`` and adds ``<script src=script>`` to every HTML page,
    dropping the page's Content-Security-Policy so that it runs: what an edge that rewrites
    pages (a careless CDN feature, a pasted tag) does before any choice."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Accept-Encoding"] = "identity"
            connection = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
            connection.close()
            if "text/html" in (answer.getheader("Content-Type") or ""):
                tag = f'<script src="{script}"></script>'.encode()
                content = content.replace(b"</head>", tag + b"</head>", 1)
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                lowered = name.lower()
                if lowered not in HOP_BY_HOP and lowered != "content-security-policy":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_HEAD = relay

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def injecting_proxy(upstream: int, script: str) -> Iterator[str]:
    """The site through that proxy, on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), injecting_handler(upstream, script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
