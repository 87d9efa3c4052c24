from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db


class Article(db.Model):  # type: ignore[name-defined]
    """One story. ``body_html`` is rendered and sanitised at import; ``body_text`` is its plain
    text, which the search index reads. ``modified_at`` moves whenever an import changes the
    stored article and drives ``Last-Modified``; ``updated_at`` is the editorial update shown
    to readers, from the front matter. ``lang`` is the edition the story belongs to: every
    listing, feed and search of an edition reads only its own language, hence the indexes
    that lead with it."""

    __tablename__ = "article"
    __table_args__ = (
        Index("ix_article_lang_published_at", "lang", "published_at"),
        Index("ix_article_lang_section_published_at", "lang", "section", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    headline: Mapped[str] = mapped_column(String(200))
    standfirst: Mapped[str] = mapped_column(String(400))
    author: Mapped[str] = mapped_column(String(120))
    section: Mapped[str] = mapped_column(String(60), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(index=True)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text, default="")
    word_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None]
    modified_at: Mapped[datetime]
    image_url: Mapped[str | None] = mapped_column(String(500))
    lang: Mapped[str] = mapped_column(String(8), default="en", server_default="en")

    tag_links: Mapped[list[ArticleTag]] = relationship(
        back_populates="article", cascade="all, delete-orphan"
    )

    @property
    def reading_minutes(self) -> int:
        return max(1, math.ceil(self.word_count / WORDS_PER_MINUTE))

    @property
    def last_changed(self) -> datetime:
        """The date readers are told the story last changed."""
        return self.updated_at or self.published_at


WORDS_PER_MINUTE = 230


class ArticleTag(db.Model):  # type: ignore[name-defined]
    """One row per tag of an article, so tag pages and related stories are plain indexed joins."""

    __tablename__ = "article_tag"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("article.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)

    article: Mapped[Article] = relationship(back_populates="tag_links")
