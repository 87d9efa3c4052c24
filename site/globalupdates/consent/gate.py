"""Where every page meets the consent engine: before the view, in templates, after the view."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, g, request, session, url_for
from markupsafe import Markup

from . import csp
from .choice import ConsentState, gpc_signal, resolve
from .consent_mode import configured_tag_id, consent_mode, policy_origins
from .firewall import strip_forbidden_cookies
from .forms import PreferencesForm, preferences_form_class
from .gpc import apply_gpc_to_stored_choice
from .registry import Registry, Script, load_registry


@dataclass(frozen=True)
class ConsentEngine:
    registry: Registry
    form_class: type[PreferencesForm]
    lifetime: timedelta
    google_tag_id: str | None = None


def init_gate(app: Flask) -> None:
    registry = load_registry(app.config["CONSENT_REGISTRY"])
    app.extensions["consent"] = ConsentEngine(
        registry=registry,
        form_class=preferences_form_class(registry),
        lifetime=timedelta(days=app.config["CONSENT_LIFETIME_DAYS"]),
        google_tag_id=configured_tag_id(app, registry),
    )
    app.before_request(resolve_consent)
    app.context_processor(consent_context)
    app.after_request(apply_consent_to_response)


def engine() -> ConsentEngine:
    return current_app.extensions["consent"]


def current_consent() -> ConsentState:
    if "consent" not in g:
        resolve_consent()
    return g.consent


def resolve_consent() -> None:
    """Resolve the reader's choice once; a GPC signal may revise it (never on static files,
    whose parallel requests would otherwise race to record the same opt-out)."""
    now = datetime.now(UTC)
    registry = engine().registry
    gpc = gpc_signal(request.headers.get("Sec-GPC"))
    state = resolve(session, registry, now=now, lifetime=engine().lifetime, gpc=gpc)
    revised = (
        None if request.endpoint == "static" else apply_gpc_to_stored_choice(state, registry, now)
    )
    if revised is not None:
        granted = registry.required_keys | (revised.categories & registry.optional_keys)
        state = ConsentState(granted=granted, choice=revised, gpc=gpc)
    g.consent = state


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def granted_scripts(state: ConsentState) -> list[tuple[str, Script]]:
    return [
        (category.key, script)
        for category in engine().registry.optional_categories
        if state.is_granted(category.key)
        for script in category.scripts
    ]


def script_url(script: Script) -> str:
    if script.static is not None:
        return static_script_url(script.static)
    return script.src or ""


def static_script_url(filename: str) -> str:
    """Built once per app and mount point: building a URL cost more than writing the tag."""
    built: dict[tuple[str, str], str] = current_app.extensions.setdefault("static_script_urls", {})
    key = (request.script_root, filename)
    if key not in built:
        built[key] = url_for("static", filename=filename)
    return built[key]


def render_gated_scripts() -> Markup:
    """The one place a gated ``<script>`` is written: category, nonce and src from the registry."""
    tags = []
    for key, script in granted_scripts(current_consent()):
        tags.append(
            Markup(
                '<script src="{src}" data-category="{key}" nonce="{nonce}"{defer}></script>'
            ).format(
                src=script_url(script),
                key=key,
                nonce=csp_nonce(),
                defer=Markup(" defer") if script.defer else Markup(""),
            )
        )
    return Markup("\n").join(tags)


def consent_context() -> dict[str, Any]:
    return {
        "consent": current_consent(),
        "consent_registry": engine().registry,
        "gated_scripts": render_gated_scripts,
        "csp_nonce": csp_nonce,
        "google_consent_mode": consent_mode(engine().google_tag_id, current_consent()),
    }


def apply_consent_to_response(response: Response) -> Response:
    """Clear withdrawn cookies, stop forbidden ones, and bind the CSP to the reader's consent."""
    state = current_consent()
    expire_cookies_not_granted(response, state)
    strip_forbidden_cookies(response, state, engine().registry)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "private, no-cache"
        response.vary.add("Cookie")
        if response.status_code != 304:  # a 304 keeps the cached page's policy and its nonce
            response.headers["Content-Security-Policy"] = content_security_policy(state)
            response.headers["Reporting-Endpoints"] = f'{csp.REPORT_GROUP}="{csp.REPORT_PATH}"'
    else:
        response.headers.setdefault("Content-Security-Policy", csp.NON_HTML_POLICY)
    return response


def content_security_policy(state: ConsentState) -> str:
    from .providers import frame_origins  # providers asks this module for the reader's state

    extra = policy_origins(consent_mode(engine().google_tag_id, state))
    return csp.html_policy(
        csp_nonce(),
        script_src=[*csp.granted_origins(state, engine().registry), *extra["script_src"]],
        connect_src=[*csp.granted_origins(state, engine().registry), *extra["connect_src"]],
        img_src=extra["img_src"],
        frame_src=frame_origins(),
    )


def expire_cookies_not_granted(response: Response, state: ConsentState) -> None:
    """Expire, with the declared path and domain, every cookie the browser sent without a grant."""
    registry = engine().registry
    for name in request.cookies:
        found = registry.find_cookie(name)
        if found is None:
            continue
        category, cookie = found
        if not state.is_granted(category.key):
            response.delete_cookie(
                name,
                path=cookie.path,
                domain=cookie.domain,
                secure=request.is_secure,
                httponly=True,
                samesite="Lax",
            )
