from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from . import cli, feeds, views
from .conditional import render_version
from .listing import SectionCache, all_sections
from .seo import absolute_url, default_page_meta


@dataclass
class ArticlesState:
    render_version: str
    sections: SectionCache = field(default_factory=SectionCache)


def init_app(app: Flask) -> None:
    app.extensions["articles"] = ArticlesState(
        render_version=render_version(
            Path(app.root_path, app.template_folder or "templates"),
            Path(app.static_folder or "static"),
        )
    )
    app.register_blueprint(views.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(cli.bp)
    app.add_template_global(absolute_url)
    app.add_template_global(default_page_meta)
    app.add_template_global(views.page_url)
    app.add_template_global(all_sections, "site_sections")
