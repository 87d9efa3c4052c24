from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import bindparam

from ..extensions import db
from .models import Article

bp = Blueprint("articles", __name__)


# Built once: constructing a statement on every request cost as much as running it.
NEWEST_FIRST = db.select(Article).order_by(Article.published_at.desc(), Article.id.desc())
BY_SLUG = db.select(Article).where(Article.slug == bindparam("slug"))


@bp.get("/")
def front_page() -> ResponseReturnValue:
    articles = db.session.scalars(NEWEST_FIRST).all()
    return render_template("articles/front.html", articles=articles)


@bp.get("/articles/<slug>")
def article_page(slug: str) -> ResponseReturnValue:
    article = db.session.scalars(BY_SLUG, {"slug": slug}).one_or_none()
    if article is None:
        abort(404)
    return render_template("articles/article.html", article=article)
