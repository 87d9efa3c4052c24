"""The consent registry in every language the site serves: each text given per language,
checked at start-up, shown in the page's language, and a choice that holds in every edition."""

from __future__ import annotations

import copy
import tomllib

import pytest

from globalupdates.consent.model.registry_file import (
    BUILTIN_REGISTRY,
    RegistryError,
    load_registry,
    parse_registry,
)
from tests.support.consent import (
    BUILTIN_REVISION,
    choose,
    in_edition,
    operator_registry,
    stored_choice,
)
from tests.support.html import one, parse, texts

LANGUAGES = ("en", "de", "fr")


@pytest.fixture
def registry_data() -> dict:
    return tomllib.loads(BUILTIN_REGISTRY.read_text(encoding="utf-8"))


def text_of(html: str) -> str:
    return " ".join(parse(html).get_text(" ").split())


def reader_texts(registry) -> list[str]:
    """The prose of one edition a reader is shown (titles may be the same word in two
    languages, as "Performance" is in English and French)."""
    controller = registry.controller
    notice = registry.notice
    found = [notice.title, notice.text, notice.text_opt_out or "", controller.necessary_basis]
    for category in registry.categories:
        found.append(category.description)
        found += [cookie.description for cookie in category.cookies]
    for provider in registry.providers:
        found += [provider.name, provider.description, provider.established or ""]
        found += [cookie.description for cookie in provider.cookies]
    for processor in controller.processors:
        found += [processor.service, processor.established]
    return found


def test_the_shipped_registry_gives_every_text_in_english_german_and_french():
    registry = load_registry()
    assert registry.languages == LANGUAGES
    assert registry.language == "en"
    english = reader_texts(registry)
    for language in ("de", "fr"):
        edition = registry.in_language(language)
        assert edition.language == language
        assert edition.keys == registry.keys
        assert edition.revision == registry.revision
        translated = reader_texts(edition)
        assert all(translated)
        same = [en for en, other in zip(english, translated, strict=True) if en == other]
        assert same == [], language
    german = registry.in_language("de")
    assert german.category("analytics").title == "Statistik"
    assert "Art. 6 Abs. 1 lit. f DSGVO" in german.controller.necessary_basis
    assert "Einwilligung" in german.notice.text
    french = registry.in_language("fr")
    assert "art. 6, paragraphe 1, point f) du RGPD" in french.controller.necessary_basis
    assert "consentement" in french.notice.text
    # A name not given in a language is shown as written; the address is never translated.
    assert french.controller.address == registry.controller.address


def test_every_edition_leads_to_every_other():
    registry = load_registry()
    german = registry.in_language("de")
    assert german.in_language("fr") is registry.in_language("fr")
    assert german.in_language("en") is registry
    assert registry.in_language("es") is registry, "a language it lacks: its first language"


@pytest.mark.parametrize(
    ("path", "key", "named"),
    [
        (("notice", "fr"), "title", "notice.title has no 'fr' text"),
        (("categories", 2, "de"), "description", "categories.analytics.description has no 'de'"),
        (
            ("categories", 2, "cookies", 0, "de"),
            "description",
            r"categories.analytics.cookies\[0\].description has no 'de' text",
        ),
        (("providers", 0, "fr"), "established", "providers.vidmoor.established has no 'fr'"),
        (
            ("providers", 0, "cookies", 0, "de"),
            "description",
            r"providers.vidmoor.cookies\[0\].description has no 'de' text",
        ),
        (("controller", "de"), "necessary_basis", "controller.necessary_basis has no 'de' text"),
        (
            ("controller", "processors", 1, "fr"),
            "service",
            r"controller.processors\[1\].service has no 'fr' text",
        ),
    ],
)
def test_a_text_missing_in_one_language_is_named_with_its_language(registry_data, path, key, named):
    table = registry_data
    for step in path:
        table = table[step]
    del table[key]
    with pytest.raises(RegistryError, match=named):
        parse_registry(registry_data)


def test_a_name_missing_in_one_language_is_shown_as_written(registry_data):
    del registry_data["providers"][0]["de"]["name"]
    del registry_data["controller"]["authority"]["fr"]
    registry = parse_registry(registry_data)
    assert registry.in_language("de").provider("vidmoor").name == registry.provider("vidmoor").name
    authority = registry.in_language("fr").controller.authority
    assert authority.name == registry.controller.authority.name


def test_a_translation_that_is_not_a_table_or_is_empty_is_refused(registry_data):
    broken = copy.deepcopy(registry_data)
    broken["notice"]["de"] = "Cookies"
    with pytest.raises(RegistryError, match="notice.de must be a table of the 'de' texts"):
        parse_registry(broken)
    registry_data["categories"][1]["fr"]["title"] = "  "
    with pytest.raises(RegistryError, match="categories.functional.fr.title must be non-empty"):
        parse_registry(registry_data)


@pytest.mark.parametrize("languages", [[], ["en", "en"], ["EN"], "en", [1]])
def test_the_languages_must_be_distinct_language_codes(registry_data, languages):
    registry_data["languages"] = languages
    with pytest.raises(RegistryError, match="languages"):
        parse_registry(registry_data)


def test_an_operator_registry_lacking_a_german_text_stops_start_up_naming_key_and_language(
    app_factory, tmp_path, monkeypatch
):
    path = operator_registry(tmp_path)
    text = path.read_text(encoding="utf-8")
    german = 'description = """\n  Wir zählen auf unseren eigenen Servern'
    assert text.count(german) == 1
    path.write_text(text.replace(german, german.replace("description", "beschreibung")), "utf-8")
    with pytest.raises(RegistryError, match="categories.analytics.description has no 'de' text"):
        app_factory(CONSENT_REGISTRY=str(path))
    monkeypatch.setenv("FLASK_CONSENT_REGISTRY", str(path))
    with pytest.raises(RegistryError, match=str(path)):
        app_factory()


def test_a_language_the_site_serves_but_the_registry_lacks_stops_start_up(app_factory, tmp_path):
    path = operator_registry(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('languages = ["en", "de", "fr"]', 'languages = ["en", "de"]'))
    with pytest.raises(RegistryError, match="no 'fr' texts, yet LANGUAGES serves 'fr'"):
        app_factory(CONSENT_REGISTRY=str(path))
    served = app_factory(CONSENT_REGISTRY=str(path), LANGUAGES=("en", "de"))
    assert served.extensions["consent"].registry.languages == ("en", "de")


def test_the_notice_hash_of_each_language_is_its_own_and_stable(registry_data):
    registry = parse_registry(registry_data)
    hashes = {language: registry.notice_hash_for(language) for language in LANGUAGES}
    assert len(set(hashes.values())) == 3
    assert all(len(value) == 64 for value in hashes.values())
    again = load_registry()
    assert {language: again.notice_hash_for(language) for language in LANGUAGES} == hashes
    assert again.notice_hash == registry.notice_hash
    assert registry.notice_hash not in hashes.values()
    with pytest.raises(KeyError):
        registry.notice_hash_for("es")
    # One German word changed: the German hash changes, and so does the fingerprint of all
    # languages (the site version of every cached page), but not the English or French hash.
    registry_data["categories"][3]["de"]["title"] = "Ladezeiten"
    changed = parse_registry(registry_data)
    assert changed.notice_hash_for("de") != hashes["de"]
    assert changed.notice_hash_for("en") == hashes["en"]
    assert changed.notice_hash_for("fr") == hashes["fr"]
    assert changed.notice_hash != registry.notice_hash


def test_the_hash_of_a_language_covers_the_texts_shown_in_it(registry_data):
    registry = parse_registry(registry_data)
    for table, key in [
        (registry_data["notice"]["fr"], "text"),
        (registry_data["notice"]["fr"], "text_opt_out"),
        (registry_data["providers"][0]["cookies"][0]["fr"], "description"),
        (registry_data["controller"]["processors"][0]["fr"], "established"),
    ]:
        table[key] = table[key] + " Modifié."
        assert parse_registry(registry_data).notice_hash_for("fr") != registry.notice_hash_for("fr")


@pytest.mark.parametrize(("language", "heading"), [("de", "Statistik"), ("fr", "Mesure")])
def test_the_banner_the_policy_and_the_notice_speak_the_page_language(
    app, client, language, heading
):
    registry = app.extensions["consent"].registry
    edition = registry.in_language(language)

    def page(path: str) -> str:
        response = client.get(in_edition(path, language))
        assert response.status_code == 200, path
        return response.get_data(as_text=True)

    front, policy, settings = page("/"), page("/cookie-policy"), page("/consent")
    notice = text_of(page("/privacy"))
    banner = one(front, "#consent-banner")
    assert texts(banner, "h2") == [edition.notice.title]
    assert edition.notice.text in text_of(str(banner))
    assert registry.notice.title not in text_of(front)
    assert texts(policy, "#policy-analytics") == [edition.category("analytics").title]
    policy = text_of(policy)
    assert edition.category("analytics").description in policy
    assert edition.provider("vidmoor").description in policy
    assert edition.cookie("gu_reader").description in policy
    assert registry.category("analytics").description not in policy
    assert edition.controller.necessary_basis in notice
    assert edition.controller.processors[1].service in notice
    assert texts(settings, "#category-analytics") == [edition.category("analytics").title]
    assert edition.category("functional").description in text_of(settings)
    assert heading in edition.category("analytics").title
    english = client.get("/cookie-policy").get_data(as_text=True)
    assert texts(english, "#policy-analytics") == ["Analytics"]


def test_titles_keep_their_capitals_in_sentences(client):
    """German nouns are capitalised: a title is never lowercased to fit an English sentence."""
    notice = client.get("/de/privacy").get_data(as_text=True)
    text = text_of(str(one(notice, "main")))
    assert "(Statistik)" in text
    assert "(statistik)" not in text


def test_a_choice_made_on_a_german_page_holds_on_an_english_page(client):
    choose(client, "save", ("analytics",), language="de")
    assert stored_choice(client)["categories"] == ["analytics", "necessary"]
    for language in LANGUAGES:
        page = client.get(in_edition("/", language)).get_data(as_text=True)
        assert 'id="consent-banner"' not in page, language
        assert 'data-category="analytics"' in page, language


def test_a_new_revision_asks_again_in_every_language(app_factory, tmp_path):
    client = app_factory().test_client()
    choose(client, "accept_all", language="fr")
    cookie = client.get_cookie("gu_session").value
    raised = app_factory(
        CONSENT_REGISTRY=str(operator_registry(tmp_path, revision=BUILTIN_REVISION + 1))
    )
    again = raised.test_client()
    again.set_cookie("gu_session", cookie)
    for language in LANGUAGES:
        page = again.get(in_edition("/", language)).get_data(as_text=True)
        assert 'id="consent-banner"' in page, language
        assert "data-category" not in page, language
