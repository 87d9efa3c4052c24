"""The preferences page, the choice itself, the reader's own history, the cookie policy and
the privacy notice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, g, jsonify, make_response, redirect, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext

from ...formats import wants_json
from ..model.choice import (
    ConsentState,
    StoredChoice,
    gpc_signal,
    left_on_by_default,
    new_choice,
    read_stored_choice,
    resolve,
    write_stored_choice,
)
from ..model.record_actions import ACCEPT_ALL, GPC_OPT_OUT, REJECT_ALL, SAVE, WITHDRAWAL
from ..proof.chain import append_to_chain
from .audit_marks import is_audit_choice
from .engine import current_consent, engine, shown_registry
from .preferences_form import PreferencesForm
from .reader_history import history_entry, records_of
from .request_hooks import granted_scripts, script_url, share_page

bp = Blueprint("consent", __name__)

SCRIPT_GPC_HEADER = "X-GPC"
# How the reader's history names each recorded action.
ACTION_LABELS = {
    ACCEPT_ALL: lazy_gettext("accept all"),
    REJECT_ALL: lazy_gettext("reject all"),
    SAVE: lazy_gettext("save"),
    WITHDRAWAL: lazy_gettext("withdrawal"),
    GPC_OPT_OUT: lazy_gettext("Global Privacy Control opt-out"),
}


def safe_next(target: str | None) -> str:
    """A same-site path to return to; anything else (another host, a scheme, a trick) is ``/``."""
    if not target or len(target) > 2048:
        return "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def preferences_form(state: ConsentState, formdata: object = None) -> PreferencesForm:
    form = engine().form_class(formdata=formdata)
    if formdata is None:
        for field in form.category_fields():
            field.data = state.is_granted(field.name)
        if "services" in form:
            form["services"].data = state.services
        form.next.data = safe_next(request.args.get("next"))
    return form


def render_preferences(form: PreferencesForm, status: int = 200, notice: str | None = None):
    return (
        render_template("consent/preferences.html", form=form, notice=notice),
        status,
    )


@bp.get("/consent")
def preferences() -> ResponseReturnValue:
    """The reader's settings; with a choice it shows their consent id, so no cache keeps it."""
    state = current_consent()
    response = make_response(render_preferences(preferences_form(state)))
    if state.has_choice:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/consent")
def choose() -> ResponseReturnValue:
    form = preferences_form(current_consent(), formdata=request.form)
    if not form.validate():
        if wants_json():
            return json_refusal(
                gettext("Nothing was changed: the choice sent could not be understood.")
            )
        return render_preferences(
            form, 400, gettext("Nothing was changed: the form you sent could not be understood.")
        )
    state = honour_script_gpc(current_consent())
    granted, services = granted_for_action(form, state)
    store_choice(form.action.data, granted, state, services)
    if wants_json():
        return choice_answer(state)
    return redirect(safe_next(form.next.data), code=303)


def json_refusal(message: str) -> ResponseReturnValue:
    response = jsonify(error=message)
    response.headers["Cache-Control"] = "no-store"
    return response, 400


def honour_script_gpc(state: ConsentState) -> ConsentState:
    """Count the consent script's report of ``navigator.globalPrivacyControl`` as ``Sec-GPC``.

    ``fetch`` may not set any ``Sec-`` header, so the script sends ``X-GPC: 1`` instead.
    The signal can only take permissions away, so trusting it needs no proof.
    """
    if state.gpc or not gpc_signal(request.headers.get(SCRIPT_GPC_HEADER)):
        return state
    g.consent = replace(state, gpc=True)
    return g.consent


def choice_answer(previous: ConsentState) -> ResponseReturnValue:
    """What the page must do now: stay as it is, or reload.

    It reloads when something was withdrawn, a category or a service (its cookies expire
    with this very response, and its scripts and embeds must stop), and when a newly granted
    category or service has scripts: the page's Content-Security-Policy names the exact URLs
    of the scripts granted when it was served, so a script granted since can only run in a
    page served under the new policy.
    """
    state = current_consent()
    registry = engine().registry
    withdrawn = previous.granted - state.granted
    withdrawn_services = previous.services - state.services
    granted = granted_scripts(state)
    newly_granted_scripts = any(
        gated.category not in previous.granted
        or (gated.service is not None and gated.service not in previous.services)
        for gated in granted
    )
    response = jsonify(
        granted=registry.in_registry_order(state.granted),
        withdrawn=registry.in_registry_order(withdrawn),
        services=registry.services_in_registry_order(state.services),
        withdrawn_services=registry.services_in_registry_order(withdrawn_services),
        reload=bool(withdrawn or withdrawn_services) or newly_granted_scripts,
        consent_id=state.consent_id,
        gpc=state.gpc,
        scripts=[
            {"src": script_url(gated.script), "category": gated.category, "service": gated.service}
            for gated in granted
        ],
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def granted_for_action(
    form: PreferencesForm, state: ConsentState
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The categories and the services (None: every service of them) the form grants."""
    registry = engine().registry
    if form.action.data == ACCEPT_ALL:
        opted_out = registry.gpc_opt_out_keys if state.gpc else frozenset()
        return registry.optional_keys - opted_out, None
    if form.action.data == REJECT_ALL:
        return frozenset(), frozenset()
    return form.saved_choice(registry, state.granted)


def store_choice(
    action: str,
    granted: frozenset[str],
    state: ConsentState,
    services: frozenset[str] | None = None,
) -> None:
    registry = engine().registry
    now = datetime.now(UTC)
    previous = read_stored_choice(session)
    consent_id = previous.consent_id if previous else None
    regime = registry.regions.regime(state.regime)
    defaulted = left_on_by_default(granted, regime, previous, accepted_all=action == ACCEPT_ALL)
    choice = new_choice(
        granted, registry, now, consent_id, gpc=state.gpc, defaulted=defaulted, services=services
    )
    language = shown_registry().language
    append_to_chain(
        consent_id=choice.consent_id,
        created_at=now,
        action=recorded_action(action, state, choice),
        categories=registry.in_registry_order(choice.categories),
        services=registry.services_in_registry_order(choice.services or frozenset()),
        revision=registry.revision,
        notice_hash=registry.notice_hash_for(language),
        gpc=state.gpc,
        language=language,
        audit=is_audit_choice(),
        regime=state.regime,
    )
    write_stored_choice(session, choice)
    session.permanent = True
    g.consent = resolve(
        session, registry, now=now, lifetime=engine().lifetime, gpc=state.gpc, regime=regime
    )


def recorded_action(action: str, state: ConsentState, choice: StoredChoice) -> str:
    """A save or reject that takes back a category or a service the reader had granted is a
    withdrawal."""
    taken_back = state.granted - choice.categories or state.services - (choice.services or set())
    if action != ACCEPT_ALL and state.choice is not None and taken_back:
        return WITHDRAWAL
    return action


@bp.get("/cookie-policy")
def cookie_policy() -> ResponseReturnValue:
    share_page()
    return render_template("consent/policy.html")


@bp.get("/privacy")
def privacy_notice() -> ResponseReturnValue:
    """Made from the registry's controller table and categories, the same for every reader."""
    share_page()
    return render_template("consent/privacy.html")


def action_label(action: str) -> str:
    """A recorded action in the reader's words; the record itself keeps the code."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action.replace("_", " ")


def service_name(key: str) -> str:
    """A recorded service by its name in the page's language, or its key once the registry
    no longer declares it."""
    try:
        return shown_registry().service(key).name
    except KeyError:
        return key


@bp.get("/consent/history")
def history() -> ResponseReturnValue:
    """Every record of the reader's own consent ID, newest first; the ID comes only from their
    signed session, so no one can ask for another reader's records."""
    state = current_consent()
    records = records_of(state.consent_id) if state.consent_id else []
    entries = [history_entry(record) for record in records]
    if wants_json():
        response = jsonify(consent_id=state.consent_id, records=entries)
    else:
        response = make_response(
            render_template(
                "consent/history.html",
                entries=entries,
                hide_banner=True,
                action_label=action_label,
                service_name=service_name,
            )
        )
    response.headers["Cache-Control"] = "private, no-store"
    return response
