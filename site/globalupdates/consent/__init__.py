"""The consent engine: any page can use it through ``g.consent`` and the template context.

It knows nothing of articles or of the site's own optional features. What they may use of it
is what this module names in ``__all__``, its public surface; the rooms inside (``model``,
``proof``, ``web``, ``reporting``) are the engine's own.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import gettext

from .. import forgery
from ..editions import declare_edition_endpoint
from ..i18n import declare_script_texts
from ..pages import declare_page
from .model.choice import ConsentState
from .model.registry import Provider
from .model.variant_cookie import VARIANT_COOKIE
from .reporting import commands
from .web import audit_marks, csp_reports, gpc, views
from .web.embed_providers import (
    allow_provider_once,
    allowed_once_providers,
    declared_provider,
    provider_granted,
)
from .web.engine import ConsentEngine, current_consent, engine
from .web.request_hooks import expire_declared_cookie, init_gate, page_variant, share_page

__all__ = [
    "ConsentState",
    "init_app",
    "current_consent",
    "engine",
    "engine_of",
    "expire_declared_cookie",
    "page_variant",
    "share_page",
    "allowed_once_providers",
    "allow_provider_once",
    "declared_provider",
    "provider_granted",
    "Provider",
    "VARIANT_COOKIE",
    "SHARED_PAGES",
]


# The engine's pages that are the same for every reader in the same state, for a page cache to
# wrap (the preferences only until the reader chose: then they show the consent id, no-store).
SHARED_PAGES = ("consent.preferences", "consent.cookie_policy", "consent.privacy_notice")


def engine_of(app: Flask) -> ConsentEngine:
    return app.extensions["consent"]


def script_texts() -> dict[str, str]:
    """What the consent script says: its dialog's close button and its status message."""
    return {
        "consent.close": gettext("Close"),
        "consent.saved": gettext("Your cookie choices are saved."),
    }


def init_app(app: Flask) -> None:
    init_gate(app)
    audit_marks.init_app(app)
    declare_script_texts(app, script_texts)
    app.register_blueprint(views.bp)
    app.register_blueprint(commands.bp)
    app.register_blueprint(gpc.bp)
    app.register_blueprint(csp_reports.bp)
    forgery.exempt(app, csp_reports.bp.name)
    declare_page(app, "consent.preferences", every_edition=True)
    declare_page(app, "consent.cookie_policy", every_edition=True)
    declare_page(app, "consent.privacy_notice", every_edition=True)
    declare_edition_endpoint(app, "consent.choose")
    declare_edition_endpoint(app, "consent.history", every_edition=True)
