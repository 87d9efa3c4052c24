"""A Content-Security-Policy bound to the reader's consent.

Scripts run only with this response's nonce, which the engine gives only to the scripts of
granted categories (``gate.render_gated_scripts``). A third-party origin declared for a
category enters ``script-src`` and ``connect-src`` only while that category is granted.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from .choice import ConsentState
from .registry import Registry, Script

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
    """Third-party origins of the granted categories, in registry order, without repeats."""
    found: list[str] = []
    for category in registry.optional_categories:
        if not state.is_granted(category.key):
            continue
        for script in category.scripts:
            found.extend(o for o in script_origins(script) if o not in found)
    return found


def html_policy(
    nonce: str,
    script_src: Iterable[str] = (),
    connect_src: Iterable[str] = (),
    img_src: Iterable[str] = (),
    frame_src: Iterable[str] = (),
) -> str:
    frames = list(frame_src)
    directives = [
        "default-src 'none'",
        " ".join(["script-src", f"'nonce-{nonce}'", *script_src]),
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
