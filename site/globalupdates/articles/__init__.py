from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask

from ..pages import declare_page
from . import cli, feeds, views
from .listing import SectionCache, all_sections, content_version
from .seo import absolute_url, default_page_meta

__all__ = ["init_app", "content_version"]


@dataclass
class ArticlesState:
    sections: SectionCache = field(default_factory=SectionCache)


def init_app(app: Flask) -> None:
    app.extensions["articles"] = ArticlesState()
    declare_page(app, "articles.front_page")
    declare_page(app, "articles.search_page")
    declare_page(app, "articles.section_page", views.section_exists)
    declare_page(app, "articles.tag_page", views.tag_exists)
    declare_page(app, "articles.article_page", views.article_exists)
    app.register_blueprint(views.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(cli.bp)
    app.add_template_global(absolute_url)
    app.add_template_global(default_page_meta)
    app.add_template_global(views.page_url)
    app.add_template_global(all_sections, "site_sections")
