"""Embed providers as the consent engine sees them: allowed or not, for this request.

A provider is allowed when the reader has granted its category, or when the reader asked
to see one of its embeds once (for this response only; nothing is stored). The engine
knows which providers were allowed, and so which origins a page may frame, but nothing of
the pages that embed them.
"""

from __future__ import annotations

from flask import g

from .gate import current_consent, engine
from .registry import Provider


def declared_provider(key: str) -> Provider | None:
    try:
        return engine().registry.provider(key)
    except KeyError:
        return None


def provider_granted(key: str) -> bool:
    """True when the reader's stored choice grants the provider's category."""
    provider = declared_provider(key)
    return provider is not None and current_consent().is_granted(provider.category)


def allow_provider_once(key: str) -> bool:
    """Let one response load this provider's content; returns False for an undeclared one."""
    if declared_provider(key) is None:
        return False
    allowed: set[str] = g.setdefault("providers_allowed_once", set())
    allowed.add(key)
    return True


def provider_allowed(key: str) -> bool:
    return provider_granted(key) or key in g.get("providers_allowed_once", ())


def frame_origins() -> tuple[str, ...]:
    """Origins this response may frame: for a Content-Security-Policy ``frame-src``.

    Call it after the view has run, since a view may allow a provider once.
    """
    origins: list[str] = []
    for provider in engine().registry.providers:
        if provider_allowed(provider.key):
            origins.extend(o for o in provider.origins if o not in origins)
    return tuple(origins)
