"""Where every page meets the consent engine: before the view, in templates, after the view.

The reader's state is resolved once per request into a small immutable value. Everything a
page body shows is a function of that value (and of the URL), never of the reader as a
person: no token, no nonce, no consent id. So two readers who made the same choice get the
same bytes, and the headers that differ per response (the policy, the cookies to clear) are
computed from the same value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from flask import Flask, Response, current_app, g, request, session
from markupsafe import Markup

from ... import forgery, sharedcache
from ...assets import static_url
from ...cookies import request_cookies
from ...httpheaders import forbids_storing, varies_on
from ...metrics.instruments import REGIME_DISAGREEMENTS
from ..model.choice import ConsentState
from ..model.google_consent_mode import consent_mode, consent_mode_script, policy_origins
from ..model.registry import Registry, Script
from ..model.variant_cookie import keep_variant_cookie_right
from . import csp
from .audit_marks import audit_regime
from .cookie_firewall import strip_forbidden_cookies
from .embed_providers import allowed_once_providers, frame_origins
from .engine import build_engine, current_consent, engine, shown_registry
from .gpc import record_gpc_opt_out_once

CONSENT_SCRIPT = "js/consent.js"


class GatedScript(NamedTuple):
    category: str
    service: str | None  # the service that runs it, or None for the category's own script
    script: Script


CONSENT_VARY = ("Cookie", "Sec-GPC")


def init_gate(app: Flask) -> None:
    """Build the engine and give templates the reader's state. The request steps,
    ``resolve_consent`` and ``apply_consent_to_response``, are registered by ``pipeline``:
    the consent step runs after every other after-request hook, so none of them can add a
    cookie past the firewall or replace the policy it sets."""
    build_engine(app)
    app.context_processor(consent_context)


def resolve_consent() -> None:
    """Resolve the reader's state before the view, and record a GPC opt-out that revises a
    stored choice (once per stored choice; never for static files)."""
    state = current_consent()
    if request.endpoint != "static" and state.gpc_revised is not None:
        record_gpc_opt_out_once(state.gpc_revised, engine().registry, state.regime)


def granted_scripts(state: ConsentState) -> list[GatedScript]:
    """The scripts this state runs: those of the granted categories, then those of the
    granted services (each only while its service is granted, whatever its category)."""
    registry = engine().registry
    of_categories = [
        GatedScript(category.key, None, script)
        for category in registry.optional_categories
        if state.is_granted(category.key)
        for script in category.scripts
    ]
    of_services = [
        GatedScript(service.category, service.key, script)
        for service in registry.services
        if state.allows_service(service.key)
        for script in service.scripts
    ]
    return of_categories + of_services


def script_url(script: Script) -> str:
    if script.static is not None:
        return static_url(script.static)
    return script.src or ""


def render_gated_scripts() -> Markup:
    """The one place a gated ``<script>`` is written: category and src from the registry."""
    tags = [
        Markup('<script src="{src}" data-category="{key}"{service}{defer}></script>').format(
            src=script_url(gated.script),
            key=gated.category,
            service=Markup(' data-service="{}"').format(gated.service) if gated.service else "",
            defer=Markup(" defer") if gated.script.defer else Markup(""),
        )
        for gated in granted_scripts(current_consent())
    ]
    return Markup("\n").join(tags)


def consent_context() -> dict[str, Any]:
    state = current_consent()
    mode = consent_mode(engine().google_tag_id, state, engine().registry)
    shown = shown_registry()
    return {
        "consent": state,
        "consent_registry": shown,
        "regime_defaults": regime_defaults(shown, state),
        "gpc_signal_keys": gpc_signal_keys(shown, state),
        "gated_scripts": render_gated_scripts,
        "consent_script_url": static_url(CONSENT_SCRIPT),
        "google_consent_mode": mode,
        "google_consent_mode_script": Markup(consent_mode_script(mode)) if mode else None,
    }


def regime_defaults(shown: Registry, state: ConsentState) -> list[str]:
    """The titles of the categories the reader's regime runs until refused, in the page's
    language and the registry's order (none under opt-in)."""
    runs = shown.regions.regime(state.regime).runs_until_refused
    return [category.title for category in shown.optional_categories if category.key in runs]


def gpc_signal_keys(shown: Registry, state: ConsentState) -> frozenset[str]:
    """The categories a Global Privacy Control signal refuses for this reader: those the
    registry names, and in an opt-out place those that run there until refused."""
    return shown.gpc_opt_out_keys | shown.regions.regime(state.regime).runs_until_refused


def share_page() -> None:
    """Mark this response as a page that is the same for every reader in the same state, so
    that it may be stored by shared caches when nothing about it is personal."""
    g.shared_page = True


def apply_consent_to_response(response: Response) -> Response:
    """Clear withdrawn cookies, keep the variant cookie right, stop forbidden cookies, bind
    the CSP to the reader's consent, and say who may cache the page.

    A request refused as a cross-origin forgery leaves with no Set-Cookie at all.
    """
    state = current_consent()
    if forgery.was_refused():
        del response.headers["Set-Cookie"]
    else:
        expire_cookies_not_granted(response, state)
        keep_variant_cookie_right(response, state)
        strip_forbidden_cookies(response, state, engine().registry)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = content_security_policy(state)
        response.headers["Reporting-Endpoints"] = f'{csp.REPORT_GROUP}="{csp.REPORT_PATH}"'
        set_cache_policy(response)
    else:
        response.headers.setdefault("Content-Security-Policy", csp.NON_HTML_POLICY)
        if audit_regime() is not None:
            keep_from_every_cache(response)
    return response


def keep_from_every_cache(response: Response) -> None:
    """A response made under the regime the cookie audit named: no cache keys on that
    header, so none may store it (``X-Accel-Expires`` says so to nginx, which keeps it to
    itself; ``no-store`` to the browser and any other cache)."""
    response.headers[sharedcache.PROXY_EXPIRES_HEADER] = "0"
    response.headers["Cache-Control"] = "private, no-store"
    del response.headers[sharedcache.CDN_CONTROL_HEADER]


def set_cache_policy(response: Response) -> None:
    """``public`` only for a shared page to a reader with no session that gets no cookie,
    and never when a proxy keyed it on another regime than the reader's, nor under the regime
    the cookie audit named (``no-store``).

    The session cookie is written after this step, so a modified session counts as a cookie
    being set. A page to a reader with a session is ``private`` and revalidated by its ETag;
    a shared cache may still be told to store it when the site verified its key
    (``sharedcache``).
    """
    if not varies_on(response.headers.get("Vary"), CONSENT_VARY):
        response.vary.update(CONSENT_VARY)
    place_headers = engine().place_headers.names
    if place_headers and not varies_on(response.headers.get("Vary"), place_headers):
        response.vary.update(place_headers)
    if audit_regime() is not None:
        keep_from_every_cache(response)
        return
    if forbids_storing(response.headers.get("Cache-Control")):
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sets_cookie = session.modified or "Set-Cookie" in response.headers
    shared = bool(g.get("shared_page")) and response.status_code in (200, 304)
    if not shared or sets_cookie:
        response.headers["Cache-Control"] = "private, no-cache"
        return
    cookies = request_cookies(request.environ)
    verdict = sharedcache.verdict(app, request.environ, cookies, current_consent())
    if not verdict.regime_agrees:
        response.headers["Cache-Control"] = "private, no-cache"
        report_regime_disagreement(app)
        return
    if not verdict.session_sent:
        response.headers["Cache-Control"] = first_visit_cache_control(app.config)
        return
    response.headers["Cache-Control"] = "private, no-cache"
    sharedcache.tell_caches(app, response, verdict)


def report_regime_disagreement(app: Flask) -> None:
    """Count a page the proxy keyed on another regime than the site's, and say so in the log
    once per worker: the proxy's map is stale, and every such page misses its cache."""
    REGIME_DISAGREEMENTS.inc()
    if app.extensions.get("regime_disagreement_logged"):
        return
    app.extensions["regime_disagreement_logged"] = True
    app.logger.warning(
        "the proxy keyed a page on regime %r where the site works out %r: nothing is stored "
        "until its map agrees (flask consent nginx-regions --write deploy/nginx.conf)",
        (request.headers.get(sharedcache.PROXY_REGIME_HEADER) or "")[:16],
        current_consent().regime,
    )


def first_visit_cache_control(config: Mapping[str, Any]) -> str:
    """A first visit's page may be kept by any shared cache, and served stale while the site
    cannot answer; a browser revalidates it every time."""
    max_age = int(config["SHARED_PAGE_MAX_AGE"])
    stale = int(config["SHARED_PAGE_STALE_IF_ERROR"])
    return f"public, max-age=0, s-maxage={max_age}, stale-if-error={stale}"


def page_variant(state: ConsentState, cookies: Mapping[str, str]) -> tuple[object, ...]:
    """What of the reader's state a page may show: the granted categories and the services
    granted inside them, whether the banner is up, the GPC signal and the regime of where they
    are (never the place itself). Nothing that identifies the reader."""
    return (
        tuple(sorted(state.granted)),
        tuple(sorted(state.services)),
        state.show_banner,
        state.gpc,
        state.regime,
    )


def content_security_policy(state: ConsentState) -> str:
    """The policy for this state, page origin and the embeds the view allowed once; each
    distinct policy is built once per worker (``current.PolicyMemo``)."""
    allowed_once = allowed_once_providers()
    key = (
        request.scheme,
        request.host,
        request.script_root,
        state.granted,
        state.services,
        state.has_choice,
        allowed_once,
    )
    return engine().policies.get_or_build(key, lambda: build_policy(state, allowed_once))


def build_policy(state: ConsentState, allowed_once: frozenset[str]) -> str:
    registry = engine().registry
    mode = consent_mode(engine().google_tag_id, state, registry)
    extra = policy_origins(mode)
    origin = f"{request.scheme}://{request.host}"
    scripts = [static_url(CONSENT_SCRIPT)] + [
        static_url(gated.script.static) for gated in granted_scripts(state) if gated.script.static
    ]
    return csp.html_policy(
        script_src=[
            *(origin + path for path in scripts),
            *csp.granted_origins(state, registry),
            *extra["script_src"],
        ],
        inline_scripts=[consent_mode_script(mode)] if mode else [],
        connect_src=[*csp.granted_origins(state, registry), *extra["connect_src"]],
        img_src=extra["img_src"],
        frame_src=frame_origins(state, allowed_once),
    )


def expire_cookies_not_granted(response: Response, state: ConsentState) -> None:
    """Expire, with the declared path and domain, every cookie the browser sent without a
    grant: of a category not granted, or of a service the reader refused."""
    registry = engine().registry
    for name in request.cookies:
        found = registry.find_cookie_owner(name)
        if found is not None and not state.allows_cookie_of(found[0].key, found[1]):
            expire_declared_cookie(response, name)


def expire_declared_cookie(response: Response, name: str) -> None:
    """Expire a declared cookie under the path and domain it was set with, or it would stay."""
    cookie = engine().registry.cookie(name)
    response.delete_cookie(
        name,
        path=cookie.path,
        domain=cookie.domain,
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",
    )
