"""Logging, configured once at start-up, and the request id that ties one request's lines together.

Every line goes to stderr (or a file an operator names for gunicorn), one JSON object per line
by default (``LOG_FORMAT=json``), or plain text when an operator asks (``LOG_FORMAT=text``), at
``LOG_LEVEL``. The app (``configure_logging``) and gunicorn.conf.py (its ``logconfig_dict``
and ``GunicornLogger``) build their set-up with ``logging_config``, so the site's lines and
gunicorn's share one format.

Each request gets an id (``RequestIds``, the outermost WSGI layer, so also the kept responses
answered in front of Flask): taken from ``X-Request-ID`` when the site is behind a proxy (the
``PROXY_FIX_*`` settings say it is) and the value has the shape of an id, made here otherwise.
It is in the environ (``REQUEST_ID_ENVIRON``) for gunicorn's access line, on every log line
written while the request runs, and in the response's ``X-Request-ID`` header. The header is
added to the headers as they leave, never to the list a cache keeps, so one reader's id is
never served to another.

No line names a reader: addresses are cut to their network (``truncated_address``), also in
gunicorn's warning about a request it cannot read; consent ids and cookie values are never
logged (Flask-Limiter's info line, which names the key of a refused request, and SQLAlchemy's
statement echo stay off).
"""

from __future__ import annotations

import ipaddress
import logging
import logging.config
import re
import secrets
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from flask import Flask
from gunicorn.glogging import Logger

from .metrics.requests import LAYER, RENDER
from .proxy import proxy_counts

REQUEST_ID_ENVIRON = "globalupdates.request_id"
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._-]{8,64}")
LOG_FORMATS = ("json", "text")
# Loggers whose info lines name a reader (Flask-Limiter's names the refused key: a consent id
# or an address; SQLAlchemy's echo the statements and their parameters); they log warnings
# and errors only.
READER_NAMING_LOGGERS = ("flask-limiter", "sqlalchemy")
JSON_FIELDS = "%(levelname)s %(name)s %(process)d %(request_id)s %(message)s"
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s %(request_id)s: %(message)s"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds the running request's id to each record that has none of its own (outside a
    request, the JSON line says ``null`` and the text line ``-``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None and getattr(record, "request_id", None) is None:
            record.request_id = request_id
        return True


class OneLineFormatter(logging.Formatter):
    """Plain text, one line per record: a line break or other control character in the message
    (a path sent as ``/a%0Afake``) is written escaped, so no request can forge a line. A
    traceback still follows on the lines after."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        if not record.message.isprintable():
            record.message = "".join(
                char if char.isprintable() else repr(char)[1:-1] for char in record.message
            )
        return super().formatMessage(record)


def logging_config(
    log_format: str,
    level: str,
    *,
    gunicorn: bool = False,
    gunicorn_level: str = "INFO",
    error_log: str = "-",
    access_log: str = "-",
) -> dict[str, Any]:
    """The ``dictConfig`` of the site; with ``gunicorn``, also of gunicorn's two loggers.

    ``gunicorn_level``, ``error_log`` and ``access_log`` are gunicorn's ``loglevel``,
    ``errorlog`` and ``accesslog``: ``-`` is stderr, anything else a file (reopened when
    logrotate moves it)."""
    log_format = log_format.lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"LOG_LEVEL must be a logging level such as INFO, not {level!r}")
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FIELDS,
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            },
            "text": {"()": OneLineFormatter, "fmt": TEXT_FORMAT, "defaults": {"request_id": "-"}},
        },
        "handlers": {"site": handler(log_format, "-")},
        "root": {"level": level, "handlers": ["site"]},
        "loggers": {name: {"level": "WARNING"} for name in READER_NAMING_LOGGERS},
    }
    if gunicorn:
        config["handlers"]["gunicorn_error"] = handler(log_format, error_log)
        config["handlers"]["gunicorn_access"] = handler(log_format, access_log)
        config["loggers"]["gunicorn.error"] = {
            "level": gunicorn_level.upper(),
            "handlers": ["gunicorn_error"],
            "propagate": False,
        }
        config["loggers"]["gunicorn.access"] = {
            "level": "INFO",
            "handlers": ["gunicorn_access"],
            "propagate": False,
        }
    return config


def handler(log_format: str, destination: str) -> dict[str, Any]:
    common = {"formatter": log_format, "filters": ["request_id"]}
    if destination == "-":
        return {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", **common}
    return {"class": "logging.handlers.WatchedFileHandler", "filename": destination, **common}


def configure_logging(app: Flask) -> None:
    """Configure the process's logging from the app's settings. Not in tests (``TESTING``),
    whose log capture the set-up would replace."""
    config = logging_config(str(app.config["LOG_FORMAT"]), str(app.config["LOG_LEVEL"]))
    if not app.testing:
        logging.config.dictConfig(config)


def truncated_address(address: str | None) -> str:
    """The network a client address is in (IPv4 /24, IPv6 /48): enough to see a flood come
    from one place, not enough to name a reader. ``-`` for anything that is not an address."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "-"
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False).network_address)


def new_request_id() -> str:
    """32 hex digits, the shape of nginx's ``$request_id``."""
    return secrets.token_hex(16)


def has_request_id_shape(value: str) -> bool:
    return REQUEST_ID_SHAPE.fullmatch(value) is not None


class RequestIds:
    """WSGI middleware: see the module's docstring."""

    def __init__(self, wsgi_app: Callable[..., Any], *, trust_header: bool) -> None:
        self.wsgi_app = wsgi_app
        self.trust_header = trust_header

    def request_id_for(self, environ: Environ) -> str:
        given = environ.get("HTTP_X_REQUEST_ID") if self.trust_header else None
        if given is not None and has_request_id_shape(given):
            return str(given)
        return new_request_id()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request_id = self.request_id_for(environ)
        environ[REQUEST_ID_ENVIRON] = request_id

        def start_with_id(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            leaving = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            leaving.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, leaving, *exc_info)

        token = current_request_id.set(request_id)
        try:
            return self.wsgi_app(environ, start_with_id)
        finally:
            current_request_id.reset(token)


def add_request_ids(app: Flask) -> None:
    """Put ``RequestIds`` outermost; it takes the proxy's id only when the site is told it is
    behind one."""
    behind_proxy = any(proxy_counts(app).values())
    app.wsgi_app = RequestIds(app.wsgi_app, trust_header=behind_proxy)  # type: ignore[method-assign]


def access_fields(
    environ: Environ, status: str | int, sent: int | None, seconds: float
) -> dict[str, Any]:
    """What gunicorn's access line holds, as fields of the record: no query string (search
    terms are a reader's), no cookie, no full address, no user agent."""
    return {
        "request_id": environ.get(REQUEST_ID_ENVIRON),
        "method": environ.get("REQUEST_METHOD"),
        "path": str(environ.get("PATH_INFO", ""))[:500],
        "status": int(str(status).split(None, 1)[0]),
        "bytes": sent or 0,
        "duration_ms": round(seconds * 1000, 3),
        "layer": environ.get(LAYER, RENDER),
        "client": truncated_address(environ.get("REMOTE_ADDR")),
    }


# gunicorn's warning for a request it cannot read names the client's full address.
GUNICORN_INVALID_REQUEST = re.compile(r"^(Invalid request from ip=)(.*?)(: )")


class GunicornLogger(Logger):
    """gunicorn's logger with an access line of the site's own (``access_fields``); an empty
    ``accesslog`` (``GUNICORN_ACCESSLOG=""``) still turns the access line off. gunicorn's
    warning about a request it cannot read names the client's network, not its address."""

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str):
            msg = GUNICORN_INVALID_REQUEST.sub(
                lambda found: found[1] + truncated_address(found[2]) + found[3], msg
            )
        super().warning(msg, *args, **kwargs)

    def access(self, resp: Any, req: Any, environ: Environ, request_time: Any) -> None:
        if self.cfg.accesslog is None:
            return
        fields = access_fields(environ, resp.status, body_bytes(resp), request_time.total_seconds())
        self.access_log.info(
            "%s %s %d %dB %.1fms %s",
            fields["method"],
            fields["path"],
            fields["status"],
            fields["bytes"],
            fields["duration_ms"],
            fields["layer"],
            extra=fields,
        )


def body_bytes(resp: Any) -> int:
    """The body's bytes sent. gunicorn counts what it writes, but not a file it hands to
    ``sendfile`` (a static file): that one was sent whole, as long as its Content-Length."""
    sent = int(getattr(resp, "sent", 0) or 0)
    if sent or getattr(resp, "_omits_body", False):
        return sent
    return int(getattr(resp, "response_length", None) or 0)
