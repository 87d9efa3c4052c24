"""The consent engine of the current app and the consent of the current request.

Everything else in the engine (the request hooks in ``gate``, the embed providers, the views)
meets the reader's state through this module, which imports none of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, request, session

from .choice import ConsentState, gpc_signal, resolve
from .consent_mode import configured_tag_id
from .forms import PreferencesForm, preferences_form_class
from .registry import Registry, load_registry


@dataclass(frozen=True)
class ConsentEngine:
    registry: Registry
    form_class: type[PreferencesForm]
    lifetime: timedelta
    google_tag_id: str | None = None
    policies: OrderedDict[tuple[Any, ...], str] = field(default_factory=OrderedDict, compare=False)


def build_engine(app: Flask) -> ConsentEngine:
    """Load the registry once; a registry that cannot be used stops start-up here."""
    registry = load_registry(app.config["CONSENT_REGISTRY"])
    built = ConsentEngine(
        registry=registry,
        form_class=preferences_form_class(registry),
        lifetime=timedelta(days=app.config["CONSENT_LIFETIME_DAYS"]),
        google_tag_id=configured_tag_id(app, registry),
    )
    app.extensions["consent"] = built
    return built


def engine() -> ConsentEngine:
    return current_app.extensions["consent"]


def current_consent() -> ConsentState:
    """The reader's state, with a GPC signal applied; it never writes anything itself."""
    if "consent" not in g:
        g.consent = resolve(
            session,
            engine().registry,
            now=datetime.now(UTC),
            lifetime=engine().lifetime,
            gpc=gpc_signal(request.headers.get("Sec-GPC")),
        )
    return g.consent
