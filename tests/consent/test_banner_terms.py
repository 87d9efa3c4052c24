"""The banner's first layer, read with the HTML parser in every edition: it names the purposes
as purposes, names by name the third parties an optional category sends data to (as the
registry declares them), says how long a choice lasts and where to change it, and links the
Privacy policy and the Cookie policy; Cookie settings say the same."""

from __future__ import annotations

import pytest
from bs4 import Tag

from globalupdates.consent.model.registry_file import RegistryError
from tests.support.consent import THIRD_PARTY, in_edition, operator_registry
from tests.support.html import link_targets, one
from tests.support.pages import ARTICLE, HALDBRUECK, LOVE_VALLEY

# What the reader of each edition must find in the first layer, written out here rather than
# read from the registry, so that a banner that stops deriving them fails.
EDITIONS = {
    "en": {
        "purposes": "purposes",
        "third parties": "Third parties:",
        "video host": "Vidmoor (demonstration video host)",
        "category": "“Functional”",
        "privacy policy": "Privacy policy",
        "cookie policy": "Cookie policy",
        "lifetime": "Your choice lasts 182 days; change it any time under Cookie settings.",
    },
    "de": {
        "purposes": "Zwecken",
        "third parties": "Drittanbieter:",
        "video host": "Vidmoor (Videoplattform zur Vorführung)",
        "category": "„Funktional“",
        "privacy policy": "Datenschutzerklärung",
        "cookie policy": "Cookie-Richtlinie",
        "lifetime": "Ihre Entscheidung gilt 182 Tage;",
    },
    "fr": {
        "purposes": "finalités",
        "third parties": "Tiers :",
        "video host": "Vidmoor (hébergeur vidéo de démonstration)",
        "category": "« Fonctionnalités »",
        "privacy policy": "Politique de confidentialité",
        "cookie policy": "Politique relative aux cookies",
        "lifetime": "Votre choix vaut pour 182 jours ;",
    },
}
# An article of each edition.
ARTICLES = {"en": ARTICLE, "de": HALDBRUECK, "fr": LOVE_VALLEY}
# What the first layer said before it named anyone: no longer said anywhere in it.
VAGUE = {
    "en": ("another site", "privacy notice"),
    "de": ("anderen Website",),
    "fr": ("autre site",),
}


def banner_of(page: str) -> Tag:
    return one(page, "#consent-banner")


def preferences_article(page: str) -> Tag:
    return one(page, "article.preferences")


def words(part: Tag) -> str:
    """What a reader reads in ``part``, its spacing tidied."""
    return " ".join(part.get_text(" ").split())


@pytest.mark.parametrize("lang", EDITIONS)
@pytest.mark.parametrize("page", ["front", "article"])
def test_the_first_layer_names_purposes_third_parties_and_links_the_privacy_policy(
    client, lang, page
):
    expected = EDITIONS[lang]
    path = in_edition("/", lang) if page == "front" else ARTICLES[lang]
    html = client.get(path).get_data(as_text=True)
    banner = banner_of(html)
    text = words(banner)
    assert expected["purposes"] in words(one(banner, ".consent-notice > p:not([class])"))
    third_parties = words(one(banner, ".consent-third-parties"))
    assert third_parties.startswith(expected["third parties"])
    assert expected["video host"] in third_parties and expected["category"] in third_parties
    assert expected["lifetime"] in text
    assert link_targets(banner, expected["privacy policy"]) == [in_edition("/privacy", lang)]
    assert link_targets(banner, expected["cookie policy"]) == [in_edition("/cookie-policy", lang)]
    footer = one(html, "footer")
    assert link_targets(footer, expected["privacy policy"]) == [in_edition("/privacy", lang)]
    for vague in VAGUE[lang]:
        assert vague not in text


@pytest.mark.parametrize("lang", EDITIONS)
def test_cookie_settings_say_the_same_and_link_the_privacy_policy(client, lang):
    expected = EDITIONS[lang]
    settings = preferences_article(client.get(in_edition("/consent", lang)).get_data(as_text=True))
    assert expected["lifetime"] in words(settings)
    assert link_targets(settings, expected["privacy policy"]) == [in_edition("/privacy", lang)]
    assert link_targets(settings, expected["cookie policy"]) == [in_edition("/cookie-policy", lang)]
    third_parties = words(one(settings, ".consent-third-parties"))
    assert expected["video host"] in third_parties and expected["category"] in third_parties


@pytest.mark.parametrize("lang", EDITIONS)
def test_the_privacy_policy_is_so_called_at_its_old_address(client, lang):
    page = client.get(in_edition("/privacy", lang))
    assert page.status_code == 200
    assert words(one(page.get_data(as_text=True), "h1")) == EDITIONS[lang]["privacy policy"]


def test_the_configured_lifetime_is_the_one_the_banner_states(app_factory):
    banner = banner_of(app_factory(CONSENT_LIFETIME_DAYS=90).test_client().get("/").text)
    assert "Your choice lasts 90 days; change it any time under Cookie settings." in words(banner)


# A processor the operator hires for analytics, with its texts in every language.
ANALYTICS_PROCESSOR = """
  [[controller.processors]]
  name = "Northwind Metrics (fictional)"
  category = "analytics"
  service = "Counts reads for us."
  established = "Exampleland"

  [controller.processors.de]
  service = "Zählt für uns die Aufrufe."
  established = "Exampleland"

  [controller.processors.fr]
  service = "Compte les lectures pour nous."
  established = "Exampleland"

"""


def with_analytics_processor(tmp_path, category: str = "analytics"):
    path = operator_registry(tmp_path, THIRD_PARTY)
    text = path.read_text(encoding="utf-8")
    processor = ANALYTICS_PROCESSOR.replace('"analytics"', f'"{category}"')
    path.write_text(text.replace("\n[[categories]]\n", f"\n{processor}[[categories]]\n", 1))
    return path


@pytest.mark.parametrize("lang", EDITIONS)
def test_an_operators_third_parties_are_named_by_name_under_their_category(
    app_factory, tmp_path, lang
):
    """The third-party script's sender, its cookie's provider and the processor hired for
    analytics are named where analytics is, the video host where functional is."""
    app = app_factory(CONSENT_REGISTRY=str(with_analytics_processor(tmp_path)))
    titles = {"en": "Analytics", "de": "Statistik", "fr": "Mesure d'audience"}
    banner = banner_of(app.test_client().get(in_edition("/", lang)).get_data(as_text=True))
    sentences = words(one(banner, ".consent-third-parties")).split(". ")
    [analytics] = [s for s in sentences if titles[lang] in s]
    for name in ("https://stats.example.net", "Example Stats", "Northwind Metrics (fictional)"):
        assert name in analytics
    assert EDITIONS[lang]["video host"] not in analytics
    [functional] = [s for s in sentences if EDITIONS[lang]["category"] in s]
    assert EDITIONS[lang]["video host"] in functional


def test_a_processor_for_a_category_that_is_not_optional_stops_start_up(app_factory, tmp_path):
    with pytest.raises(RegistryError, match=r"controller\.processors\[2\]\.category"):
        app_factory(CONSENT_REGISTRY=str(with_analytics_processor(tmp_path, "necessary")))
