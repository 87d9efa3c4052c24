"""The consent engine: any page can use it through ``g.consent`` and the template context.

It knows nothing of articles or of the site's own optional features.
"""

from __future__ import annotations

from flask import Flask

from .. import forgery
from ..pages import declare_page
from . import cli, gpc, reports, views
from .current import ConsentEngine, current_consent, engine
from .gate import expire_declared_cookie, init_gate, page_variant, share_page
from .providers import allowed_once_providers

__all__ = [
    "init_app",
    "current_consent",
    "engine",
    "engine_of",
    "expire_declared_cookie",
    "page_variant",
    "share_page",
    "allowed_once_providers",
]


def engine_of(app: Flask) -> ConsentEngine:
    return app.extensions["consent"]


def init_app(app: Flask) -> None:
    init_gate(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(gpc.bp)
    app.register_blueprint(reports.bp)
    forgery.exempt(app, reports.bp.name)
    declare_page(app, "consent.preferences")
    declare_page(app, "consent.cookie_policy")
    declare_page(app, "consent.privacy_notice")
