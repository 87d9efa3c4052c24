"""The consent engine: any page can use it through ``g.consent`` and the template context.

It knows nothing of articles or of the site's own optional features.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFError

from ..extensions import csrf
from . import cli, gpc, reports, views
from .gate import current_consent, engine, init_gate

__all__ = ["init_app", "current_consent", "engine"]


def init_app(app: Flask) -> None:
    init_gate(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(gpc.bp)
    app.register_blueprint(reports.bp)
    csrf.exempt(reports.bp)
    app.register_error_handler(CSRFError, views.handle_csrf_error)
