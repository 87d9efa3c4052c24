"""Which format an answer takes: JSON for scripts, HTML for people."""

from __future__ import annotations

from flask import Flask, current_app, request


def wants_json() -> bool:
    """A caller that sends JSON or prefers it to HTML, or one on a path answered only in JSON
    (beacons, which cannot choose their Accept header)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if request.is_json or best == "application/json":
        return True
    return request.path.startswith(current_app.extensions.get("json_only_paths", ()))


def answer_in_json(app: Flask, path_prefix: str) -> None:
    """Errors under ``path_prefix`` (a 404 or 405 included) are answered in JSON."""
    prefixes = app.extensions.get("json_only_paths", ())
    app.extensions["json_only_paths"] = (*prefixes, path_prefix)
