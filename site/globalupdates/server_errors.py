"""gunicorn's own answers to requests it cannot read, with the site's fixed security headers.

A request line over gunicorn's limit (414), a header over its limit (431) or a malformed
request (400) never reaches Flask: gunicorn answers it itself, through
``gunicorn.util.write_error``, with nothing but ``Content-Type`` and ``Content-Length``.
``install`` puts ``write_error`` here in its place, which writes the same status with every
header the site sends on every response that does not depend on the request, and the policy
the site gives anything that is not a page. The body is one fixed sentence: gunicorn's own
message quotes the refused request, and it stays in gunicorn's log, where it already goes.

The replacement relies on how gunicorn 27 writes these answers; ``check_gunicorn`` says so
loudly (the site does not start) when an upgrade changes that, rather than letting the
headers vanish without a word.
"""

from __future__ import annotations

import inspect
import socket

from gunicorn import util
from gunicorn.workers import base

from .consent.web.csp import NON_HTML_POLICY
from .security import STATIC_HEADERS

ERROR_HEADERS = {**STATIC_HEADERS, "Content-Security-Policy": NON_HTML_POLICY}
WRITE_ERROR_PARAMETERS = ("sock", "status_int", "reason", "mesg")
EXPLANATIONS = {
    400: "The server could not read this request.",
    414: "The address in this request is too long.",
    431: "The headers of this request are too large.",
}


class GunicornChanged(RuntimeError):
    """This gunicorn no longer writes its error answers the way ``install`` replaces."""


def error_answer(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection; nothing in it comes from the
    request (gunicorn's status and reason are its own fixed words)."""
    reason = " ".join(reason.split())
    body = f"{EXPLANATIONS.get(status, reason)}\n".encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in ERROR_HEADERS.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, called the same way; ``mesg`` is not sent back."""
    util.write_nonblock(sock, error_answer(status_int, reason))


def check_gunicorn() -> None:
    """Raise ``GunicornChanged`` unless the worker still answers an unreadable request by
    calling ``util.write_error(sock, status_int, reason, mesg)``."""
    current = getattr(util, "write_error", None)
    if current is None:
        raise GunicornChanged("gunicorn.util.write_error is gone; see globalupdates.server_errors")
    parameters = tuple(inspect.signature(current).parameters)
    if parameters != WRITE_ERROR_PARAMETERS:
        raise GunicornChanged(
            f"gunicorn.util.write_error now takes {parameters}, not {WRITE_ERROR_PARAMETERS}"
        )
    if not callable(getattr(util, "write_nonblock", None)):
        raise GunicornChanged("gunicorn.util.write_nonblock is gone")
    try:
        handler = inspect.getsource(base.Worker.handle_error)
    except OSError as error:
        raise GunicornChanged(f"cannot read gunicorn's Worker.handle_error: {error}") from error
    if "util.write_error(" not in handler:
        raise GunicornChanged("gunicorn's Worker.handle_error no longer calls util.write_error")


def install() -> None:
    """Make gunicorn write its error answers with ``write_error`` above (once is enough;
    again changes nothing). Called by gunicorn.conf.py in the master, before any worker
    is forked, so every worker inherits it."""
    check_gunicorn()
    util.write_error = write_error
