"""Write Markdown articles the way an editor would, and import them into the test database."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from globalupdates.articles.importer import import_paths


def article_markdown(
    slug: str,
    *,
    headline: str = "A headline",
    standfirst: str = "A standfirst.",
    body: str = "A body of plain words.",
    section: str = "World",
    tags: tuple[str, ...] = (),
    published: str = "2026-01-01T09:00:00Z",
    **extra: str,
) -> str:
    lines = [
        "---",
        f"slug: {slug}",
        f"headline: {headline}",
        f"standfirst: {standfirst}",
        "author: Test Author",
        f"published: {published}",
        f"section: {section}",
        f"tags: [{', '.join(tags)}]",
        *(f"{key}: {value}" for key, value in extra.items()),
        "---",
        "",
        body,
        "",
    ]
    return "\n".join(lines)


def import_articles(app: Flask, folder: Path, *articles: tuple[str, dict]) -> None:
    """Write each (slug, fields) pair to ``folder`` and import the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for slug, fields in articles:
        (folder / f"{slug}.md").write_text(article_markdown(slug, **fields), encoding="utf-8")
    with app.app_context():
        import_paths([folder])
