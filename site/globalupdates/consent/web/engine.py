"""The consent engine of the current app and the consent of the current request.

Everything else in the engine (the request hooks in ``gate``, the embed providers, the views)
meets the reader's state through this module, which imports none of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import LRUCache
from flask import Flask, current_app, g, has_request_context, request, session

from ...i18n import page_language
from ..model.choice import ConsentState, gpc_signal, resolve
from ..model.google_consent_mode import configured_tag_id
from ..model.regions import Regime
from ..model.registry import Registry
from ..model.registry_file import RegistryError, load_registry
from .audit_marks import audit_regime
from .edge import PlaceHeaders, place_headers, reader_regime
from .preferences_form import PreferencesForm, preferences_form_class

POLICY_MEMO_BYTES = 512 * 1024


class PolicyMemo:
    """The Content-Security-Policy of each state and page origin, built once per worker; at
    most ``POLICY_MEMO_BYTES`` of policies, least recently used out first (an attacker
    naming many hosts cannot grow it)."""

    def __init__(self, max_bytes: int = POLICY_MEMO_BYTES) -> None:
        self._policies: LRUCache[tuple[Any, ...], str] = LRUCache(maxsize=max_bytes, getsizeof=len)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._policies)

    def clear(self) -> None:
        with self._lock:
            self._policies.clear()

    def get_or_build(self, key: tuple[Any, ...], build: Callable[[], str]) -> str:
        with self._lock:
            policy = self._policies.get(key)
        if policy is None:
            policy = build()
            with self._lock:
                self._policies[key] = policy
        return policy


@dataclass(frozen=True)
class ConsentEngine:
    registry: Registry
    form_class: type[PreferencesForm]
    lifetime: timedelta
    google_tag_id: str | None = None
    place_headers: PlaceHeaders = PlaceHeaders()
    policies: PolicyMemo = field(default_factory=lambda: PolicyMemo(), compare=False)


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
        place_headers=place_headers(app),
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
    """The reader's state, with a GPC signal applied, under the regime of where they are (or
    the one the cookie audit visits as, from an allowed address); it never writes anything
    itself."""
    if "consent" not in g:
        built = engine()
        g.consent = resolve(
            session,
            built.registry,
            now=datetime.now(UTC),
            lifetime=built.lifetime,
            gpc=gpc_signal(request.headers.get("Sec-GPC")),
            regime=audit_regime() or request_regime(built, request.environ),
        )
    return g.consent


def request_regime(built: ConsentEngine, environ: Mapping[str, Any]) -> Regime:
    """The regime of where this request's reader is, as the trusted edge says."""
    return reader_regime(built.registry.regions, built.place_headers, environ)
