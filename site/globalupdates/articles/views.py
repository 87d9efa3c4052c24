from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from ..extensions import db
from .models import Article

bp = Blueprint("articles", __name__)


@bp.get("/")
def front_page() -> ResponseReturnValue:
    articles = db.session.scalars(
        db.select(Article).order_by(Article.published_at.desc(), Article.id.desc())
    ).all()
    return render_template("articles/front.html", articles=articles)


@bp.get("/articles/<slug>")
def article_page(slug: str) -> ResponseReturnValue:
    article = db.first_or_404(db.select(Article).filter_by(slug=slug))
    return render_template("articles/article.html", article=article)
