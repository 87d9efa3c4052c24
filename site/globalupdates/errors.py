"""Error pages: HTML for people, JSON for scripts, never a stack trace."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext
from sqlalchemy.exc import (
    DBAPIError,
    InternalError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    SecurityError,
    ServiceUnavailable,
    default_exceptions,
)

from .database import WriteBatchFailed, error_summary
from .extensions import db
from .formats import wants_json
from .metrics.instruments import DATABASE_ERRORS, RATE_LIMIT_REFUSALS
from .metrics.requests import endpoint_group

# PostgreSQL's SQLSTATEs for a table and for a column that do not exist, and for a write
# refused because transactions are read-only (a standby, or default_transaction_read_only),
# and for a privilege the site's role lacks (a revoked INSERT or SELECT).
MISSING_SCHEMA_STATES = frozenset({"42P01", "42703"})
READ_ONLY_STATE = "25006"
INSUFFICIENT_PRIVILEGE_STATE = "42501"
OUTAGE_STATES = frozenset({READ_ONLY_STATE, INSUFFICIENT_PRIVILEGE_STATE})
MISSING_SCHEMA_SQLITE = ("no such table", "no such column")

TEMPLATES = {404: "errors/404.html", 500: "errors/500.html", 503: "errors/503.html"}

# The reason phrase and a plain explanation of each status the site answers with, in the
# reader's language; an error raised with its own description keeps it.
STATUS_NAMES = {
    400: lazy_gettext("Bad Request"),
    403: lazy_gettext("Forbidden"),
    404: lazy_gettext("Not Found"),
    405: lazy_gettext("Method Not Allowed"),
    413: lazy_gettext("Request Entity Too Large"),
    415: lazy_gettext("Unsupported Media Type"),
    429: lazy_gettext("Too Many Requests"),
    500: lazy_gettext("Internal Server Error"),
    503: lazy_gettext("Service Unavailable"),
}
STATUS_DESCRIPTIONS = {
    400: lazy_gettext("The site could not understand this request."),
    403: lazy_gettext("You are not allowed to do this here."),
    404: lazy_gettext("There is nothing at this address."),
    405: lazy_gettext("This address does not take that kind of request."),
    413: lazy_gettext("What was sent is too large for this address."),
    415: lazy_gettext("This address does not accept what was sent in that format."),
    429: lazy_gettext("Too many requests in a short time; please wait a moment and try again."),
    500: lazy_gettext("Something went wrong on our side; please try again in a moment."),
    503: lazy_gettext("The site is unavailable for a moment; please try again shortly."),
}


def error_name(error: HTTPException) -> str:
    return str(STATUS_NAMES.get(error.code or 500, error.name))


def error_description(error: HTTPException) -> str:
    """The error's own description, or the translated one of its status when it carries only
    Werkzeug's English default."""
    status = error.code or 500
    default = default_exceptions.get(status)
    if status in STATUS_DESCRIPTIONS and (
        error.description is None or (default and error.description == default.description)
    ):
        return str(STATUS_DESCRIPTIONS[status])
    return str(error.description)


def render_error(error: HTTPException) -> ResponseReturnValue:
    if error.code == 429:
        RATE_LIMIT_REFUSALS.labels(endpoint_group(request.endpoint)).inc()
    """The error in the caller's format, keeping the headers the error carries (``Allow`` on a
    405, ``Retry-After`` where given)."""
    if isinstance(error, SecurityError):
        return untrusted_host()
    status = error.code or 500
    headers = [(name, value) for name, value in error.get_headers() if name != "Content-Type"]
    if wants_json():
        return {"error": error_description(error)}, status, headers
    template = TEMPLATES.get(status, "errors/generic.html")
    page = render_template(
        template,
        error=error,
        error_name=error_name(error),
        error_description=error_description(error),
    )
    return page, status, headers


def untrusted_host() -> ResponseReturnValue:
    """A Host the site does not answer for: plain text, since every page names its host."""
    text = gettext("This site does not answer for that host name.") + "\n"
    return text, 400, {"Content-Type": "text/plain; charset=utf-8"}


def database_unavailable(error: DBAPIError) -> ResponseReturnValue:
    db.session.rollback()
    DATABASE_ERRORS.labels(database_error_kind(error)).inc()
    current_app.logger.warning("database unavailable: %s", error_summary(error))
    return render_error(
        ServiceUnavailable(gettext("The database is not answering. Please try again shortly."))
    )


def batch_not_stored(error: WriteBatchFailed) -> ResponseReturnValue:
    """A choice whose batch could not be committed: nothing of the batch was stored, and its
    cause is logged once by whoever committed it (``consent.proof.chain.ChainWriter``), so
    an outage leaves one clear line, not one more per choice (the access line has the 503)."""
    current_app.logger.debug("a choice was not stored: its batch failed")
    DATABASE_ERRORS.labels("batch_not_stored").inc()
    return render_error(
        ServiceUnavailable(gettext("The database is not answering. Please try again shortly."))
    )


def outage_or_error(error: DBAPIError) -> ResponseReturnValue:
    """A table or column the code needs is not in the database (a database recreated empty,
    a migration not run), the database takes no writes, or the site's role lost a privilege:
    an outage like an unreachable database, so a 503 while it is repaired. Any other error of
    these classes is a bug, and goes on to the 500 and its log."""
    if not (is_missing_schema(error) or sqlstate(error) in OUTAGE_STATES):
        raise error
    return database_unavailable(error)


def database_error_kind(error: DBAPIError) -> str:
    """The kind an outage is counted under: a missing table or column, a refused write
    (read-only database, lost privilege), or a database that does not answer."""
    if is_missing_schema(error):
        return "missing_schema"
    if sqlstate(error) in OUTAGE_STATES:
        return "refused"
    return "unavailable"


def is_missing_schema(error: SQLAlchemyError) -> bool:
    """Whether the database lacks a table or column: PostgreSQL says so with a SQLSTATE,
    SQLite only in its message."""
    state = sqlstate(error)
    if state is not None:
        return state in MISSING_SCHEMA_STATES
    return str(getattr(error, "orig", "")).startswith(MISSING_SCHEMA_SQLITE)


def sqlstate(error: SQLAlchemyError) -> str | None:
    """The SQLSTATE the driver reported (psycopg 3 and psycopg2 name it differently)."""
    original = getattr(error, "orig", None)
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


def internal_error(error: Exception) -> ResponseReturnValue:
    return render_error(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(WriteBatchFailed, batch_not_stored)
    app.register_error_handler(ProgrammingError, outage_or_error)
    app.register_error_handler(InternalError, outage_or_error)
    app.register_error_handler(InternalServerError, internal_error)
