"""The preferences form speaks the page's language, and reads WTForms' catalogue once."""

from __future__ import annotations

import gettext

import babel.support
import pytest

from tests.support.consent import SAME_ORIGIN

TOO_LONG = {"action": "save", "next": "/" + "a" * 3000}
LENGTH_MESSAGES = {
    "": "Field cannot be longer than 2048 characters.",
    "/de": "Feld kann nicht länger als 2048 Zeichen sein.",
    "/fr": "Le champ ne peut pas contenir plus de 2048 caractères.",
}


@pytest.mark.parametrize(("prefix", "message"), LENGTH_MESSAGES.items())
def test_a_refused_form_names_the_fault_in_the_page_language(client, prefix, message):
    response = client.post(f"{prefix}/consent", data=TOO_LONG, headers=SAME_ORIGIN)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_forms_do_not_read_the_wtforms_catalogue_again(client, monkeypatch):
    reads: list[str] = []
    load, translation = babel.support.Translations.load, gettext.translation

    def counted_load(*args, **kwargs):
        reads.append("babel")
        return load(*args, **kwargs)

    def counted_translation(domain, *args, **kwargs):
        if domain == "wtforms":
            reads.append(domain)
        return translation(domain, *args, **kwargs)

    monkeypatch.setattr(babel.support.Translations, "load", counted_load)
    monkeypatch.setattr(gettext, "translation", counted_translation)
    for _ in range(5):
        assert client.post("/de/consent", data=TOO_LONG, headers=SAME_ORIGIN).status_code == 400
        assert client.get("/consent").status_code == 200
    assert len(reads) <= 2, reads  # once for each of the two languages at most
