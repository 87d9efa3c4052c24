"""Embed providers as the consent engine sees them: allowed or not, for this request.

A provider is a service of its category: it is allowed when the reader has granted it (and so
its category), or when the reader asked
to see one of its embeds once (for this response only; nothing is stored). The engine
knows which providers were allowed, and so which origins a page may frame, but nothing of
the pages that embed them.
"""

from __future__ import annotations

from flask import g

from ..model.choice import ConsentState
from ..model.registry import Provider
from .engine import current_consent, engine, shown_registry


def declared_provider(key: str) -> Provider | None:
    """The provider with its texts in the page's language."""
    try:
        return shown_registry().provider(key)
    except KeyError:
        return None


def provider_granted(key: str) -> bool:
    """True when the reader's stored choice grants the provider (a service of its category)."""
    provider = declared_provider(key)
    return provider is not None and current_consent().allows_service(provider.key)


def allow_provider_once(key: str) -> bool:
    """Let one response load this provider's content; returns False for an undeclared one."""
    if declared_provider(key) is None:
        return False
    allowed: set[str] = g.setdefault("providers_allowed_once", set())
    allowed.add(key)
    return True


def allowed_once_providers() -> frozenset[str]:
    """Providers this response loads once, by the reader's request; set by the view."""
    return frozenset(g.get("providers_allowed_once", ()))


def frame_origins(state: ConsentState, allowed_once: frozenset[str]) -> tuple[str, ...]:
    """Origins a page may frame, for a Content-Security-Policy ``frame-src``: those of the
    providers the state grants and of those allowed once."""
    origins: list[str] = []
    for provider in engine().registry.providers:
        if state.allows_service(provider.key) or provider.key in allowed_once:
            origins.extend(o for o in provider.origins if o not in origins)
    return tuple(origins)
