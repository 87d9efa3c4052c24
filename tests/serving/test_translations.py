"""The German and French catalogues: complete, in step with the sources, faithful to each
message's placeholders, and used by every page and date a reader sees."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup
from flask import Flask
from flask_babel import force_locale
from werkzeug.exceptions import NotFound

from globalupdates.articles.importer import import_paths
from globalupdates.config import PROJECT_ROOT
from globalupdates.errors import error_description, error_name
from globalupdates.i18n import day_count, reader_date, reader_date_time
from tests.support.pages import ARTICLE, MISSING_ARTICLE
from tests.support.translations import (
    TRANSLATED,
    catalogue,
    english_left,
    entries,
    forms,
    placeholders,
    translated_sentences,
)

# The keywords `make i18n` extracts with, besides Babel's own (_, gettext, ngettext...).
EXTRA_KEYWORDS = ("lazy_gettext",)
PAGES = ("/", ARTICLE, "/consent", "/cookie-policy", "/privacy", MISSING_ARTICLE)
MOMENT = datetime(2026, 11, 24, 14, 5)


def extracted_ids(tmp_path: Path) -> set[str]:
    """What `make i18n` would extract from the sources as they are now."""
    template = tmp_path / "messages.pot"
    keywords = [option for keyword in EXTRA_KEYWORDS for option in ("-k", keyword)]
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(PROJECT_ROOT / "babel.cfg"), *keywords]
        + ["-o", str(template), str(PROJECT_ROOT)]
    )
    with template.open("rb") as handle:
        return {forms(message.id)[0] for message in entries(read_po(handle))}


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_entry_is_translated_and_none_is_fuzzy(lang):
    messages = entries(catalogue(lang))
    assert len(messages) > 150
    untranslated = [m.id for m in messages if not all(form.strip() for form in forms(m.string))]
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert (untranslated, fuzzy) == ([], [])


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_catalogue_holds_every_message_the_sources_mark(lang, tmp_path):
    in_catalogue = {forms(message.id)[0] for message in entries(catalogue(lang))}
    sources = extracted_ids(tmp_path)
    assert "Accept All" in sources
    assert sorted(sources - in_catalogue) == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_each_translation_keeps_the_placeholders_of_its_message(lang):
    wrong = []
    for message in entries(catalogue(lang)):
        expected = set().union(*(placeholders(text) for text in forms(message.id)))
        for form in forms(message.string):
            if placeholders(form) != expected:
                wrong.append((forms(message.id)[0], form))
    assert wrong == []


@pytest.mark.parametrize(
    ("lang", "day", "day_and_time", "lifetime"),
    [
        ("en", "24 November 2026", "24 November 2026, 14:05 UTC", "182 days"),
        ("de", "24. November 2026", "24. November 2026, 14:05 Uhr UTC", "182 Tage"),
        ("fr", "24 novembre 2026", "24 novembre 2026 à 14:05 UTC", "182 jours"),
    ],
)
def test_dates_and_durations_read_as_each_language_writes_them(
    app, lang, day, day_and_time, lifetime
):
    with app.test_request_context("/"), force_locale(lang):
        assert reader_date(MOMENT) == day
        assert reader_date(MOMENT.date()) == day
        assert reader_date_time(MOMENT) == day_and_time
        assert day_count(182) == lifetime


def test_dates_are_shown_in_the_configured_time_zone(app_factory):
    app = app_factory(TIMEZONE="Europe/Berlin")
    with app.test_request_context("/"):
        assert reader_date_time(datetime(2026, 11, 24, 23, 30)) == "25 November 2026, 00:30 UTC+1"
        assert reader_date_time(datetime(2026, 7, 1, 22, 0)) == "2 July 2026, 00:00 UTC+2"


def rendered(app: Flask, path: str, lang: str) -> BeautifulSoup:
    """The page as a reader of ``lang`` would get it, rendered afresh (not from the cache)."""
    with app.app_context(), force_locale(lang):
        response = app.test_client().get(path)
    assert response.status_code in (200, 404)
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def page_text(app: Flask, path: str, lang: str) -> str:
    return " ".join(rendered(app, path, lang).get_text(" ").split())


@pytest.fixture
def uncached_app(app_factory) -> Flask:
    """Pages rendered afresh: ``rendered`` forces a language from outside the request, which
    no cache key sees (a reader's language comes from the edition in the path)."""
    app = app_factory(CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True, KEPT_RESPONSE_BYTES=0)
    with app.app_context():
        import_paths([PROJECT_ROOT / "content"])
    return app


@pytest.mark.parametrize("path", PAGES)
def test_a_german_page_has_no_english_message_left(uncached_app, path):
    page = rendered(uncached_app, path, "de")
    assert english_left(page, translated_sentences("de")) == []
    assert "Cookie-Einstellungen" in page.get_text()


def test_the_banner_speaks_german_and_french(uncached_app):
    german = page_text(uncached_app, "/", "de")
    french = page_text(uncached_app, "/", "fr")
    english = page_text(uncached_app, "/", "en")
    assert "Alle akzeptieren" in german and "Accept All" not in german
    assert "Alle ablehnen" in german and "Anpassen" in german
    assert "Tout accepter" in french and "Accept All" not in french
    assert "Ihre Entscheidung gilt 182 Tage" in german
    assert "Accept All" in english and "Alle akzeptieren" not in english


def test_an_article_dateline_follows_the_language(uncached_app):
    text = page_text(uncached_app, ARTICLE, "de")
    assert "Veröffentlicht am 18. November 2026, 08:30 Uhr UTC" in text


def test_an_error_name_and_description_follow_the_language(app):
    with app.test_request_context("/"), force_locale("fr"):
        assert error_name(NotFound()) == "Introuvable"
        assert error_description(NotFound()) == "Il n'y a rien à cette adresse."
        assert error_description(NotFound("Own words.")) == "Own words."


def test_a_default_language_without_a_catalogue_stops_the_site(app_factory):
    with pytest.raises(ValueError, match="not one of LANGUAGES"):
        app_factory(BABEL_DEFAULT_LOCALE="es")
