"""Google Consent Mode v2, for an operator who configures a Google tag id.

Every page first declares all four signals denied, then maps the reader's choice onto them.
Google's own tag is loaded only once the reader granted a category it serves (the "basic"
flavour of Consent Mode), so a reader who chose nothing sends nothing to Google, in keeping
with the rule that no optional script runs before consent. Its origins enter the
Content-Security-Policy only then.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .choice import ConsentState
from .registry import Registry

TAG_ID_PATTERN = re.compile(r"^(G|GT|AW|DC)-[A-Z0-9]{4,20}$")
TAG_SCRIPT = "https://www.googletagmanager.com/gtag/js"
SIGNALS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
SIGNALS_OF_CATEGORY = {
    "analytics": ("analytics_storage",),
    "advertisement": ("ad_storage", "ad_user_data", "ad_personalization"),
}
SCRIPT_ORIGINS = ("https://www.googletagmanager.com",)
CONNECT_ORIGINS = (
    "https://www.googletagmanager.com",
    "https://www.google-analytics.com",
    "https://*.google-analytics.com",
    "https://*.analytics.google.com",
)
IMG_ORIGINS = ("https://www.googletagmanager.com", "https://*.google-analytics.com")


@dataclass(frozen=True)
class ConsentMode:
    tag_id: str
    defaults: dict[str, str]
    update: dict[str, str] | None
    load_tag: bool

    @property
    def tag_src(self) -> str:
        return f"{TAG_SCRIPT}?id={self.tag_id}"


def configured_tag_id(app: Flask, registry: Registry) -> str | None:
    """The operator's tag id, checked at start-up so that a typo stops the site, not Google."""
    tag_id = app.config.get("GOOGLE_TAG_ID")
    if not tag_id:
        return None
    if not isinstance(tag_id, str) or not TAG_ID_PATTERN.match(tag_id):
        raise ValueError(f"GOOGLE_TAG_ID {tag_id!r} is not a Google tag id such as G-ABC123XYZ")
    missing = set(SIGNALS_OF_CATEGORY) - set(registry.keys)
    if missing:
        raise ValueError(f"Consent Mode needs the registry categories {sorted(missing)}")
    return tag_id


def granted_for_google(state: ConsentState, key: str, registry: Registry | None) -> bool:
    """A category counts as granted to Google only when the reader grants it and every one
    of its Google services (``google = true`` in the registry): refusing one Google service
    of a category denies the category's signals."""
    if not state.is_granted(key):
        return False
    google = registry.google_services_of(key) if registry is not None else frozenset()
    return all(state.allows_service(service) for service in google)


def signals_for(state: ConsentState, registry: Registry | None = None) -> dict[str, str]:
    granted = {
        signal
        for key, signals in SIGNALS_OF_CATEGORY.items()
        if granted_for_google(state, key, registry)
        for signal in signals
    }
    return {signal: "granted" if signal in granted else "denied" for signal in SIGNALS}


def consent_mode(
    tag_id: str | None, state: ConsentState, registry: Registry | None = None
) -> ConsentMode | None:
    """Every signal denied by default; updated to the reader's choice, or, in an opt-out place,
    to what runs there until refused."""
    if tag_id is None:
        return None
    return ConsentMode(
        tag_id=tag_id,
        defaults=dict.fromkeys(SIGNALS, "denied"),
        update=signals_for(state, registry) if state.has_choice or state.opt_out_regime else None,
        load_tag=any(granted_for_google(state, key, registry) for key in SIGNALS_OF_CATEGORY),
    )


def consent_mode_script(mode: ConsentMode) -> str:
    """The inline script that declares the signals; the page's policy allows it by its hash,
    so the text must be exactly what the template writes between the tags."""

    def call(*args: object) -> str:
        return f"gtag({', '.join(json.dumps(arg, sort_keys=True) for arg in args)});"

    lines = [
        "window.dataLayer = window.dataLayer || [];",
        "function gtag() { window.dataLayer.push(arguments); }",
        call("consent", "default", mode.defaults),
    ]
    if mode.update:
        lines.append(call("consent", "update", mode.update))
    if mode.load_tag:
        lines += ['gtag("js", new Date());', call("config", mode.tag_id)]
    return "\n".join(lines).replace("</", "<\\/")


def policy_origins(mode: ConsentMode | None) -> dict[str, Any]:
    if mode is None or not mode.load_tag:
        return {"script_src": (), "connect_src": (), "img_src": ()}
    return {"script_src": SCRIPT_ORIGINS, "connect_src": CONNECT_ORIGINS, "img_src": IMG_ORIGINS}
