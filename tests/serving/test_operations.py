"""What an operator relies on: health, secrets, one-time preparation, the export."""

from __future__ import annotations

from pathlib import Path

from globalupdates import create_app
from globalupdates.articles.models import Article
from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.extensions import db
from globalupdates.prepare import prepare_site
from tests.support.consent import choose


def test_healthz_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        "schema": "ok",
        "reads": "ok",
        "writes": "ok",
        "proof_keys": "ok",
    }


def test_healthz_write_check_leaves_nothing_behind(app, client):
    """The write check's record never stays: no record, no id used up (its id is negative and
    given, so no PostgreSQL sequence value is taken and rowids go on from the last record),
    no lock kept."""
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert choose(client, "accept_all").status_code == 303
    with app.app_context():
        ids = db.session.scalars(db.select(ConsentRecord.id)).all()
    assert ids == [1]


def test_healthz_and_pages_answer_503_when_the_database_does_not(app_factory, tmp_path):
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable"
    page = client.get("/")
    assert page.status_code == 503
    assert "Temporarily unavailable" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


def test_without_a_configured_secret_one_is_made_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    database = f"sqlite:///{tmp_path}/db.sqlite3"
    first = create_app({"SQLALCHEMY_DATABASE_URI": database})
    second = create_app({"SQLALCHEMY_DATABASE_URI": database})
    key_file = tmp_path / "instance" / "secret_key"
    assert first.secret_key == second.secret_key == key_file.read_text()
    assert len(first.secret_key) == 64
    assert key_file.stat().st_mode & 0o077 == 0


def test_secret_key_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/db.sqlite3"})
    assert app.secret_key == "from-the-environment"
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_prepare_migrates_an_empty_database_and_loads_demo_content_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/fresh.sqlite3", "SECRET_KEY": "k"}
    )
    prepare_site(app)
    with app.app_context():
        db.session.execute(db.delete(Article).where(Article.slug.like("kessling%")))
        db.session.commit()
    prepare_site(app)
    with app.app_context():
        slugs = db.session.scalars(db.select(Article.slug)).all()
        db.engine.dispose()
    assert len(slugs) == len(list(Path(app.config["CONTENT_DIR"]).glob("*.md"))) - 1
