"""The preferences page, the choice itself and the cookie policy."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from .choice import ConsentState, new_choice, read_stored_choice, resolve, write_stored_choice
from .forms import PreferencesForm
from .gate import current_consent, engine
from .records import append_record

bp = Blueprint("consent", __name__)
WITHDRAWAL = "withdrawal"


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
        form.next.data = safe_next(request.args.get("next"))
    return form


def render_preferences(form: PreferencesForm, status: int = 200, notice: str | None = None):
    return (
        render_template("consent/preferences.html", form=form, notice=notice),
        status,
    )


@bp.get("/consent")
def preferences() -> ResponseReturnValue:
    return render_preferences(preferences_form(current_consent()))


@bp.post("/consent")
def choose() -> ResponseReturnValue:
    form = preferences_form(current_consent(), formdata=request.form)
    if not form.validate():
        return render_preferences(
            form, 400, "Nothing was changed: the form you sent could not be understood."
        )
    state = current_consent()
    granted = granted_for_action(form, state)
    store_choice(form.action.data, granted, state)
    return redirect(safe_next(form.next.data), code=303)


def granted_for_action(form: PreferencesForm, state: ConsentState) -> frozenset[str]:
    registry = engine().registry
    if form.action.data == "accept_all":
        opted_out = registry.gpc_opt_out_keys if state.gpc else frozenset()
        return registry.optional_keys - opted_out
    if form.action.data == "reject_all":
        return frozenset()
    return form.checked_categories()


def store_choice(action: str, granted: frozenset[str], state: ConsentState) -> None:
    registry = engine().registry
    now = datetime.now(UTC)
    previous = read_stored_choice(session)
    consent_id = previous.consent_id if previous else None
    choice = new_choice(granted, registry, now, consent_id, gpc=state.gpc)
    append_record(
        consent_id=choice.consent_id,
        created_at=now,
        action=recorded_action(action, state, choice.categories),
        categories=registry.in_registry_order(choice.categories),
        revision=registry.revision,
        notice_hash=registry.notice_hash,
        gpc=state.gpc,
    )
    write_stored_choice(session, choice)
    session.permanent = True
    g.consent = resolve(session, registry, now=now, lifetime=engine().lifetime, gpc=state.gpc)


def recorded_action(action: str, state: ConsentState, granted: frozenset[str]) -> str:
    """A save or reject that takes back a category the reader had granted is a withdrawal."""
    if action != "accept_all" and state.choice is not None and state.granted - granted:
        return WITHDRAWAL
    return action


@bp.get("/cookie-policy")
def cookie_policy() -> ResponseReturnValue:
    return render_template("consent/policy.html")


def handle_csrf_error(error: CSRFError) -> ResponseReturnValue:
    """A stale or missing token changes nothing; the reader's ticks are kept for one more click."""
    if request.endpoint == "consent.choose":
        form = preferences_form(current_consent(), formdata=request.form)
        form.validate()
        form.csrf_token.errors = []
        form.next.data = safe_next(form.next.data)
        return render_preferences(
            form,
            400,
            "Nothing was changed yet: this form had expired or did not come from this site. "
            "Your choices are still ticked below; press a button once more to save them.",
        )
    return {"error": "The security token was missing or invalid; nothing was changed."}, 400
