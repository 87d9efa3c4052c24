"""Error pages: HTML for people, JSON for scripts, never a stack trace."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    SecurityError,
    ServiceUnavailable,
)

from .extensions import db

TEMPLATES = {404: "errors/404.html", 500: "errors/500.html", 503: "errors/503.html"}


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.is_json or best == "application/json" or request.path.startswith("/features/")


def render_error(error: HTTPException) -> ResponseReturnValue:
    """The error in the caller's format, keeping the headers the error carries (``Allow`` on a
    405, ``Retry-After`` where given)."""
    if isinstance(error, SecurityError):
        return untrusted_host()
    status = error.code or 500
    headers = [(name, value) for name, value in error.get_headers() if name != "Content-Type"]
    if wants_json():
        return {"error": error.description}, status, headers
    template = TEMPLATES.get(status, "errors/generic.html")
    return render_template(template, error=error), status, headers


def untrusted_host() -> ResponseReturnValue:
    """A Host the site does not answer for: plain text, since every page names its host."""
    text = "This site does not answer for that host name.\n"
    return text, 400, {"Content-Type": "text/plain; charset=utf-8"}


def database_unavailable(error: OperationalError) -> ResponseReturnValue:
    db.session.rollback()
    return render_error(
        ServiceUnavailable("The database is not answering. Please try again shortly.")
    )


def internal_error(error: Exception) -> ResponseReturnValue:
    return render_error(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(InternalServerError, internal_error)
