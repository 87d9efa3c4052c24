from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class Article(db.Model):  # type: ignore[name-defined]
    __tablename__ = "article"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    headline: Mapped[str] = mapped_column(String(200))
    standfirst: Mapped[str] = mapped_column(String(400))
    author: Mapped[str] = mapped_column(String(120))
    section: Mapped[str] = mapped_column(String(60), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(index=True)
    body_html: Mapped[str] = mapped_column(Text)
