"""gunicorn's own answers (requests it refuses before Flask sees them) carry the site's fixed
security headers: checked against the real server over raw sockets, since no HTTP client
will send the malformed requests that cause them."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from gunicorn import util
from gunicorn.workers import base

from globalupdates import server_errors
from globalupdates.consent.web.csp import NON_HTML_POLICY
from globalupdates.security import STATIC_HEADERS
from tests.support.gunicorn_server import Server, running_gunicorn

EXPECTED_HEADERS = {**STATIC_HEADERS, "Content-Security-Policy": NON_HTML_POLICY}
MARKER = "reflected-marker"


@pytest.fixture(scope="module")
def server(migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("gunicorn-errors")
    database = folder / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    with running_gunicorn(f"sqlite:///{database}", folder, {"WEB_CONCURRENCY": "1"}) as running:
        yield running


def raw_exchange(port: int, request: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send ``request`` as it is and read the whole answer (gunicorn closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    headers = BytesHeaderParser().parsebytes(header_block + b"\r\n\r\n")
    return int(status_line.split()[1]), list(headers.items()), body


REFUSED = {
    "431: a 9 KB header": (
        f"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {MARKER}{'a' * 9000}\r\n\r\n",
        431,
    ),
    "414: a 5,000-character URL": (
        f"GET /{MARKER}{'a' * 5000} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        414,
    ),
    "400: a malformed request line": (f"GET /{MARKER} NOT-HTTP\r\nHost: localhost\r\n\r\n", 400),
}


@pytest.mark.slow
@pytest.mark.parametrize(("request_text", "status"), REFUSED.values(), ids=REFUSED.keys())
def test_gunicorns_own_answers_carry_the_security_headers_once(server, request_text, status):
    got, headers, body = raw_exchange(server.port, request_text.encode("latin-1"))
    assert got == status, body[:300]
    names = [name.lower() for name, _ in headers]
    for name, value in EXPECTED_HEADERS.items():
        assert names.count(name.lower()) == 1, (name, headers)
        assert dict(headers)[name] == value
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"
    assert dict(headers)["Content-Length"] == str(len(body))
    assert MARKER.encode() not in body, "the answer repeats the refused request"


@pytest.mark.slow
def test_a_page_still_comes_from_the_site_with_its_own_policy(server):
    got, headers, _ = raw_exchange(
        server.port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert got == 200
    assert [value for name, value in headers if name == "X-Content-Type-Options"] == ["nosniff"]


def test_the_replacement_is_what_gunicorn_calls(monkeypatch):
    monkeypatch.setattr(util, "write_error", util.write_error)
    server_errors.install()
    assert util.write_error is server_errors.write_error
    server_errors.install()
    assert util.write_error is server_errors.write_error


def test_a_gunicorn_without_write_error_stops_the_site(monkeypatch):
    monkeypatch.delattr(util, "write_error")
    with pytest.raises(server_errors.GunicornChanged, match="write_error is gone"):
        server_errors.install()


def test_a_write_error_that_takes_other_arguments_stops_the_site(monkeypatch):
    monkeypatch.setattr(util, "write_error", lambda sock, status, reason: None)
    with pytest.raises(server_errors.GunicornChanged, match="now takes"):
        server_errors.install()


def test_a_worker_that_answers_errors_another_way_stops_the_site(monkeypatch):
    def handle_error(self, req, client, addr, exc):
        client.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    monkeypatch.setattr(base.Worker, "handle_error", handle_error)
    with pytest.raises(server_errors.GunicornChanged, match="handle_error"):
        server_errors.install()
