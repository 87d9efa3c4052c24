"""Articles: the demo content, the pages a reader opens, and the import an operator runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from globalupdates.articles.models import Article
from globalupdates.extensions import db
from tests.support.html import attributes, link_targets
from tests.support.pages import HARROWMERE, KESSLING, LANTERNS, NEWSROOMS

ARTICLE = """---
slug: harbour-lights
headline: Harbour lights return
standfirst: The old lamps are lit again.
author: Test Writer
published: 2026-11-25T09:00:00Z
section: World
tags: [towns]
---
The lamps are **back**.

<script>alert("x")</script>
<a href="javascript:alert(1)">click</a>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_page_lists_articles_newest_first_with_links(client):
    html = client.get("/").get_data(as_text=True)
    assert attributes(html, 'a[href^="/articles/"]', "href") == [
        NEWSROOMS,
        KESSLING,
        HARROWMERE,
        LANTERNS,
    ]


def test_article_page_shows_the_whole_story(client):
    response = client.get("/articles/kessling-morvelle-night-train-returns")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Night train between Kessling and Morvelle returns after 19 years</h1>" in html
    assert "Jonas Albrecht-Lune" in html
    assert "<h2>What passengers will find</h2>" in html
    assert "<strong>Eastline Rail</strong>" in html


def test_unknown_article_is_a_real_404_page(client):
    response = client.get("/articles/no-such-story")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert "Cookie settings" in response.get_data(as_text=True)


def test_unexpected_error_is_a_500_page_without_a_trace(app_factory):
    app = app_factory(PROPAGATE_EXCEPTIONS=False)

    @app.get("/explode")
    def explode():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/explode")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "secret internals" not in html and "Traceback" not in html


def test_site_name_is_configurable_and_in_the_footer(app_factory):
    app = app_factory(SITE_NAME="Harbour Post")
    html = app.test_client().get("/").get_data(as_text=True)
    assert "<title>Harbour Post</title>" in html
    assert f"(c) {datetime.now(UTC).year} Harbour Post" in html


def test_footer_has_copyright_and_cookie_settings(client):
    html = client.get("/").get_data(as_text=True)
    assert f"(c) {datetime.now(UTC).year} Global Updates" in html
    assert link_targets(html, "Cookie settings") == ["/consent?next=/"]


def test_import_renders_sanitised_html_once(app, runner, tmp_path):
    path = write(tmp_path, "harbour.md", ARTICLE)
    result = runner.invoke(args=["articles", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 1 new" in result.output
    with app.app_context():
        article = db.session.scalar(db.select(Article).filter_by(slug="harbour-lights"))
        assert article is not None
        assert "<strong>back</strong>" in article.body_html
        assert "<script" not in article.body_html
        assert "javascript:" not in article.body_html
        assert article.published_at == datetime(2026, 11, 25, 9, 0)
        assert article.tags == ["towns"]


def test_import_is_idempotent_by_slug(app, runner, tmp_path):
    path = write(tmp_path, "harbour.md", ARTICLE)
    runner.invoke(args=["articles", "import", str(path)])
    write(tmp_path, "harbour.md", ARTICLE.replace("Harbour lights return", "Harbour lights shine"))
    result = runner.invoke(args=["articles", "import", str(tmp_path)])
    assert "Imported 0 new and updated 1" in result.output
    with app.app_context():
        rows = db.session.scalars(db.select(Article).filter_by(slug="harbour-lights")).all()
        assert [row.headline for row in rows] == ["Harbour lights shine"]


def test_import_refuses_a_bad_file_and_stores_nothing(app, runner, tmp_path):
    write(tmp_path, "a-good.md", ARTICLE)
    write(tmp_path, "b-bad.md", "---\nheadline: No author or date\n---\nBody\n")
    result = runner.invoke(args=["articles", "import", str(tmp_path)])
    assert result.exit_code != 0
    assert "b-bad.md" in result.output and "author" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(Article).filter_by(slug="harbour-lights")) is None


def test_import_of_a_missing_path_is_a_clear_error(runner, tmp_path):
    result = runner.invoke(args=["articles", "import", str(tmp_path / "nowhere.md")])
    assert result.exit_code != 0
    assert "no such file" in result.output
