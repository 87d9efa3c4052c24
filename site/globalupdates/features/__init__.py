"""Global Updates' own optional features, declared in the consent registry like any other script."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app, url_for
from flask_babel import gettext, ngettext

from ..consent import ConsentState, engine_of
from ..editions import declare_edition_endpoint
from ..formats import answer_in_json
from ..i18n import declare_script_texts
from . import cli, views

PAGE_COOKIES = frozenset({views.TEXT_SIZE_COOKIE})  # cookies whose value changes a page


def page_variant_of(app: Flask) -> Callable[[ConsentState, Mapping[str, str]], str]:
    """The one reader preference a page shows: the text size, while the category that gates
    the text-size script is granted (functional, in the registry ``app`` serves)."""
    category = engine_of(app).registry.category_of_static_script(views.TEXT_SIZE_SCRIPT)

    def text_size(state: ConsentState, cookies: Mapping[str, str]) -> str:
        return views.text_size_for(state, cookies, category)

    return text_size


def page_views_text(count: int) -> str:
    """The page-view sentence in the plural form ``count`` takes, with ``{count}`` for the
    script to fill in."""
    return ngettext(
        "Read %(count)s time on %(site)s.",
        "Read %(count)s times on %(site)s.",
        count,
        count="{count}",
        site=current_app.config["SITE_NAME"],
    )


def script_texts() -> dict[str, str]:
    """What the features' scripts say, and where the house ad of this edition comes from.
    The page-view count is a plural: the script takes the form for one or for more."""
    return {
        "textsize.smaller": gettext("Smaller text"),
        "textsize.larger": gettext("Larger text"),
        "pageviews.one": page_views_text(1),
        "pageviews.other": page_views_text(2),
        "timing.loaded": gettext("This page loaded in %(ms)s ms.", ms="{ms}"),
        "housead.url": url_for("features.house_ad"),
    }


def init_app(app: Flask) -> None:
    for endpoint in ("choose_text_size", "house_ad", "erase_reading_data"):
        declare_edition_endpoint(app, f"{views.bp.name}.{endpoint}")
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
    declare_script_texts(app, script_texts)
    answer_in_json(app, views.bp.url_prefix or "/features")

    @app.context_processor
    def text_size() -> dict[str, Any]:
        return {"text_size": views.reader_text_size}
