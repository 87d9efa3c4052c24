"""The consent engine of the current app and the consent of the current request.

Everything else in the engine (the request hooks in ``gate``, the embed providers, the views)
meets the reader's state through this module, which imports none of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, has_request_context, request, session

from ..i18n import page_language
from .choice import ConsentState, gpc_signal, resolve
from .consent_mode import configured_tag_id
from .forms import PreferencesForm, preferences_form_class
from .registry import Registry, RegistryError, load_registry


@dataclass(frozen=True)
class ConsentEngine:
    registry: Registry
    form_class: type[PreferencesForm]
    lifetime: timedelta
    google_tag_id: str | None = None
    policies: OrderedDict[tuple[Any, ...], str] = field(default_factory=OrderedDict, compare=False)


def build_engine(app: Flask) -> ConsentEngine:
    """Load the registry once; a registry that cannot be used stops start-up here, and so
    does one that lacks a language the site serves."""
    registry = load_registry(app.config["CONSENT_REGISTRY"])
    check_languages(registry, tuple(app.config["LANGUAGES"]))
    built = ConsentEngine(
        registry=registry,
        form_class=preferences_form_class(registry),
        lifetime=timedelta(days=app.config["CONSENT_LIFETIME_DAYS"]),
        google_tag_id=configured_tag_id(app, registry),
    )
    app.extensions["consent"] = built
    return built


def check_languages(registry: Registry, served: tuple[str, ...]) -> None:
    for language in served:
        if language not in registry.languages:
            raise RegistryError(
                f"the consent registry has no {language!r} texts, yet LANGUAGES serves "
                f"{language!r}: add it to the registry's languages {list(registry.languages)} "
                "with its texts, or take it out of LANGUAGES"
            )


def engine() -> ConsentEngine:
    return current_app.extensions["consent"]


def shown_registry() -> Registry:
    """The registry in the language of the page being served (its first language outside a
    request): what a template shows and what a record proves was shown."""
    registry = engine().registry
    return registry.in_language(page_language()) if has_request_context() else registry


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
