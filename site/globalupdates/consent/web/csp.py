"""A Content-Security-Policy bound to the reader's consent.

``script-src`` names the exact URL (origin and path) of every script the page may run: the
consent script and the scripts of the granted categories, plus the third-party origins of
the granted categories; an inline script runs only by its SHA-256 hash. There is no nonce
and no ``'self'``, so the policy is the same for every reader in the same state and a page
body never changes with it. After Reject All, no gated script's URL is in the policy.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..model.choice import ConsentState
from ..model.registry import Registry, Script

REPORT_PATH = "/csp-report"
REPORT_GROUP = "csp"
NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        return None
    return f"https://{parts.netloc}"


def script_origins(script: Script) -> list[str]:
    origins = [origin_of(script.src)] if script.src else []
    origins.extend(origin_of(origin) for origin in script.origins)
    return [origin for origin in origins if origin]


def granted_origins(state: ConsentState, registry: Registry) -> list[str]:
    """Third-party origins of the granted categories' scripts and of the granted services'
    scripts and declared origins, in registry order, without repeats. An embed provider's
    origins are framed, not scripted: ``embed_providers.frame_origins`` gives those."""
    found: list[str] = []
    for category in registry.optional_categories:
        if not state.is_granted(category.key):
            continue
        for script in category.scripts:
            found.extend(o for o in script_origins(script) if o not in found)
    for service in registry.services:
        if not state.allows_service(service.key):
            continue
        for script in service.scripts:
            found.extend(o for o in script_origins(script) if o not in found)
        if service in registry.script_services:
            found.extend(o for o in service.origins if o not in found)
    return found


def script_hash(source: str) -> str:
    """The CSP source expression that allows one inline script with exactly this text."""
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def html_policy(
    script_src: Iterable[str] = (),
    inline_scripts: Iterable[str] = (),
    connect_src: Iterable[str] = (),
    img_src: Iterable[str] = (),
    frame_src: Iterable[str] = (),
) -> str:
    frames = list(frame_src)
    directives = [
        "default-src 'none'",
        " ".join(["script-src", *script_src, *map(script_hash, inline_scripts)]),
        "style-src 'self'",
        " ".join(["img-src", "'self'", *img_src]),
        "font-src 'self'",
        " ".join(["connect-src", "'self'", *connect_src]),
        "manifest-src 'self'",
        *([" ".join(["frame-src", *frames])] if frames else []),
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        f"report-uri {REPORT_PATH}",
        f"report-to {REPORT_GROUP}",
    ]
    return "; ".join(directives)
