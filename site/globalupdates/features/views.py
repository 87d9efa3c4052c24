"""The site's own optional features. Each endpoint answers only a reader who granted the
category that the registry gives the feature's script, so the gate is declared once."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, jsonify, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext

from ..consent import ConsentState, current_consent, engine, expire_declared_cookie
from ..cookies import request_cookies
from ..database import one_writer
from ..extensions import db
from ..pages import page_exists
from .models import PageTiming
from .pageviews import erase_reader_views, page_view_buffer

bp = Blueprint("features", __name__, url_prefix="/features")

TEXT_SIZES = ("small", "normal", "large", "larger")
TEXT_SIZE_COOKIE = "gu_text_size"
TEXT_SIZE_SCRIPT = "features/textsize.js"
READER_COOKIE = "gu_reader"
AD_CAP_COOKIE = "gu_ad_cap"
AD_CAP_PER_DAY = 3
MAX_TIMING_MS = 600_000
HOUSE_AD = {
    "headline": lazy_gettext("Every cookie we use, explained in plain words"),
    "text": lazy_gettext(
        "Our cookie policy lists what each one does and how long it lasts. Read it in two minutes."
    ),
    "label": lazy_gettext("Promotion from Global Updates"),
}


def gated_by(static_script: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer 403 unless the reader granted the category that gates ``static_script``."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            category = engine().registry.category_of_static_script(static_script)
            if not current_consent().is_granted(category):
                refusal = gettext(
                    "This needs your consent to %(category)s cookies.", category=category
                )
                return jsonify(error=refusal), 403
            return view(*args, **kwargs)

        return wrapper

    return decorate


def set_declared_cookie(response: Response, name: str, value: str) -> None:
    """Set a cookie with exactly the lifetime, path and domain the registry declares for it."""
    cookie = engine().registry.cookie(name)
    response.set_cookie(
        name,
        value,
        max_age=cookie.max_age,
        path=cookie.path,
        domain=cookie.domain,
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",
    )


def is_reader_value(value: str) -> bool:
    """The shape of a value this site puts in the reader cookie (32 hexadecimal digits)."""
    return len(value) == 32 and value.isalnum()


def json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description=gettext("Send a JSON object."))
    return data


def site_path(value: Any) -> str:
    """A path of this site at which a page exists; anything else is refused."""
    if not is_site_path(value):
        abort(400, description=gettext("'path' must be a path on this site."))
    if not page_exists(value):
        abort(400, description=gettext("'path' is not a page of this site."))
    return value


def is_site_path(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and len(value) <= 300
        and not any(ord(ch) < 0x21 or ch == "\x7f" for ch in value)
    )


def whole_milliseconds(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        abort(400, description=gettext("'%(name)s' must be a number of milliseconds.", name=name))
    if not 0 <= value <= MAX_TIMING_MS:
        abort(
            400,
            description=gettext(
                "'%(name)s' must be between 0 and %(limit)d.", name=name, limit=MAX_TIMING_MS
            ),
        )
    return int(value)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@bp.post("/pageview")
@gated_by("features/pageviews.js")
def record_page_view() -> ResponseReturnValue:
    path = site_path(json_body().get("path"))
    reader = request.cookies.get(READER_COOKIE, "")
    new_reader = not is_reader_value(reader)
    if new_reader:
        reader = secrets.token_hex(16)
    views = page_view_buffer().add(path, reader)
    response = jsonify(path=path, views=views)
    if new_reader:
        set_declared_cookie(response, READER_COOKIE, reader)
    return response


@bp.post("/timing")
@gated_by("features/timing.js")
def record_timing() -> ResponseReturnValue:
    data = json_body()
    timing = PageTiming(
        path=site_path(data.get("path")),
        created_at=utc_now(),
        time_to_first_byte=whole_milliseconds(data, "ttfb"),
        dom_content_loaded=whole_milliseconds(data, "domContentLoaded"),
        load_event=whole_milliseconds(data, "load"),
    )
    with one_writer(db.engine):
        db.session.add(timing)
        db.session.commit()
    return jsonify(recorded=True, load=timing.load_event), 201


@bp.post("/text-size")
@gated_by(TEXT_SIZE_SCRIPT)
def choose_text_size() -> ResponseReturnValue:
    size = json_body().get("size")
    if size not in TEXT_SIZES:
        abort(
            400,
            description=gettext("'size' must be one of %(sizes)s.", sizes=", ".join(TEXT_SIZES)),
        )
    response = jsonify(size=size)
    set_declared_cookie(response, TEXT_SIZE_COOKIE, size)
    return response


@bp.get("/house-ad")
@gated_by("features/housead.js")
def house_ad() -> ResponseReturnValue:
    seen = request.cookies.get(AD_CAP_COOKIE, "0")
    shown = int(seen) if seen.isdigit() and len(seen) < 4 else 0
    if shown >= AD_CAP_PER_DAY:
        return Response(status=204)
    ad = {name: str(value) for name, value in HOUSE_AD.items()}
    response = jsonify({**ad, "href": url_for("consent.cookie_policy")})
    set_declared_cookie(response, AD_CAP_COOKIE, str(shown + 1))
    return response


def reader_text_size() -> str:
    """The text size to render this request's page with."""
    category = engine().registry.category_of_static_script(TEXT_SIZE_SCRIPT)
    return text_size_for(current_consent(), request_cookies(request.environ), category)


def text_size_for(state: ConsentState, cookies: Mapping[str, str], category: str) -> str:
    """The reader's own text size only while ``category`` (functional) is granted."""
    size = cookies.get(TEXT_SIZE_COOKIE, "normal")
    if not state.is_granted(category) or size not in TEXT_SIZES:
        return "normal"
    return size


@bp.post("/reading-data/erase")
def erase_reading_data() -> ResponseReturnValue:
    """Delete the page views counted under the reader cookie this browser sends (also those
    still waiting to be written, here or in another worker), and expire that cookie. Not
    gated: a reader may erase whatever they granted before. Timings carry no reader value, so
    they cannot be told apart and are left to the retention period."""
    reader = request.cookies.get(READER_COOKIE, "")
    erased = erase_reader_views(reader) if is_reader_value(reader) else 0
    target = url_for("consent.preferences", erased=erased, _anchor="reading-data")
    response = make_response(redirect(target, 303))
    expire_declared_cookie(response, READER_COOKIE)
    response.headers["Cache-Control"] = "no-store"
    return response
