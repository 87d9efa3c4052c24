"""Global Updates' own optional features, declared in the consent registry like any other script."""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..formats import answer_in_json
from . import cli, views

PAGE_COOKIES = frozenset({views.TEXT_SIZE_COOKIE})  # cookies whose value changes a page


def page_variant() -> str:
    """The one reader preference a page shows: the text size, while functional is granted."""
    return views.reader_text_size()


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
    answer_in_json(app, views.bp.url_prefix or "/features")

    @app.context_processor
    def text_size() -> dict[str, Any]:
        return {"text_size": views.reader_text_size}
