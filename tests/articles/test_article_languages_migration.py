"""The migration to article languages upgrades a site that already has articles, on SQLite and
on PostgreSQL: they become English, English search keeps working, and German articles imported
afterwards are found by their inflected forms. It also goes down and up again.

Each test migrates a database of its own (a new file, or a new PostgreSQL database beside the
one ``TEST_DATABASE_URL`` names), since it starts from the revision before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade

from globalupdates import create_app
from globalupdates.articles.search import search_articles
from globalupdates.extensions import db
from tests.support.apps import app_config
from tests.support.articles import import_articles
from tests.support.databases import PostgresTestDatabase, backend_names, configured_postgres_url

BEFORE = "e3a9c1d27b40"  # the revision before f7b2d4e6a813_article_languages
OLD_ARTICLE = """
INSERT INTO article (slug, headline, standfirst, author, section, tags, published_at,
                     body_html, body_text, word_count, modified_at)
VALUES ('old-story', 'Turbines spin at the harbour', 'An older story.', 'A Writer', 'World',
        '["energy"]', :at, '<p>The turbines turned.</p>', 'The turbines turned.', 3, :at)
"""


@pytest.fixture(params=backend_names())
def site_before_languages(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """A site migrated to the revision before languages, holding one article."""
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    database = None
    if request.param == "postgresql":
        admin_url = configured_postgres_url()
        assert admin_url
        database = PostgresTestDatabase(admin_url)
        database.create()
        uri = database.sqlalchemy_uri
    else:
        uri = f"sqlite:///{tmp_path / 'before.sqlite3'}"
    app = create_app(app_config(uri, tmp_path))
    try:
        with app.app_context():
            upgrade(directory=app.config["MIGRATIONS_DIR"], revision=BEFORE)
            db.session.execute(db.text(OLD_ARTICLE), {"at": datetime(2026, 1, 5, 9)})
            db.session.commit()
            db.session.remove()
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if database is not None:
            database.drop()


def migrate(app: Flask, revision: str = "head", down: bool = False) -> None:
    with app.app_context():
        step = downgrade if down else upgrade
        step(directory=app.config["MIGRATIONS_DIR"], revision=revision)
        db.session.remove()


def found(app: Flask, query: str, lang: str) -> list[str]:
    with app.test_request_context("/"):
        return [hit.article.slug for hit in search_articles(query, lang).hits]


def test_existing_articles_become_english_and_stay_searchable(site_before_languages):
    app = site_before_languages
    migrate(app)
    with app.app_context():
        assert db.session.execute(db.text("SELECT slug, lang FROM article")).all() == [
            ("old-story", "en")
        ]
    assert found(app, "turbine", "en") == ["old-story"]
    assert found(app, "turbine", "de") == []


def test_german_articles_imported_after_the_upgrade_are_found_by_any_form(
    site_before_languages, tmp_path
):
    app = site_before_languages
    migrate(app)
    import_articles(app, tmp_path / "new", ("zug", {"lang": "de", "body": "Die Nachtzüge."}))
    assert found(app, "Nachtzuges", "de") == ["zug"]
    assert found(app, "Nachtzuges", "en") == []


def test_the_migration_goes_down_and_up_again(site_before_languages, tmp_path):
    app = site_before_languages
    migrate(app)
    import_articles(app, tmp_path / "new", ("zug", {"lang": "de", "body": "Die Nachtzüge."}))
    migrate(app, BEFORE, down=True)
    with app.app_context():
        columns = db.inspect(db.engine).get_columns("article")
        assert "lang" not in {column["name"] for column in columns}
    migrate(app)
    with app.app_context():  # the German story is English again until it is imported again
        assert dict(db.session.execute(db.text("SELECT slug, lang FROM article")).all()) == {
            "old-story": "en",
            "zug": "en",
        }
    assert found(app, "turbine", "en") == ["old-story"]
    import_articles(
        app,
        tmp_path / "new",
        ("zug", {"lang": "de", "body": "Die Nachtzüge."}),
        ("quarry", {"headline": "Quarrymen strike"}),  # the English index's triggers survived
    )
    assert found(app, "Nachtzügen", "de") == ["zug"]
    assert found(app, "quarrymen", "en") == ["quarry"]
