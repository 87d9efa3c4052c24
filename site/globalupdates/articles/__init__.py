from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask

from ..editions import declare_edition_endpoint
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
    declare_page(app, "articles.front_page", every_edition=True)
    declare_page(app, "articles.search_page", every_edition=True)
    declare_page(app, "articles.section_page", views.section_exists)
    declare_page(app, "articles.tag_page", views.tag_exists)
    declare_page(app, "articles.article_page", views.article_exists)
    for endpoint in ("articles.show_embed_once", "feeds.site_feed", "feeds.section_feed"):
        declare_edition_endpoint(app, endpoint)
    app.register_blueprint(views.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(cli.bp)
    app.add_template_global(absolute_url)
    app.add_template_global(default_page_meta)
    app.add_template_global(views.page_url)
    app.add_template_global(all_sections, "site_sections")
