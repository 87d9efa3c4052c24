"""The privacy notice at /privacy is made from the registry, so it lists exactly what the banner
offers, and the controller data it names is checked when the site starts."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from globalupdates.consent.model.registry_file import (
    BUILTIN_REGISTRY,
    RegistryError,
    load_registry,
    parse_registry,
)
from globalupdates.pages import page_exists
from tests.support.html import link_targets, one
from tests.support.pages import ARTICLE

RIGHTS = (
    "access",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "portability",
    "withdrawal",
    "complaint",
)
EXTRA_COOKIE = """
  [[categories.cookies]]
  name = "gu_visit_depth"
  max_age = 7200
  description = "Counts how many pages you read in one visit."

  [categories.cookies.de]
  description = "Zählt, wie viele Seiten Sie bei einem Besuch lesen."

  [categories.cookies.fr]
  description = "Compte combien de pages vous lisez au cours d'une visite."
"""
EXTRA_SCRIPT = """
  [[categories.scripts]]
  src = "https://stats.example.org/count.js"
  origins = ["https://stats.example.org"]
  provider = "Example Stats Ltd"
  established = "Canada, outside the European Economic Area"

  [categories.scripts.de]
  established = "Kanada, außerhalb des Europäischen Wirtschaftsraums"

  [categories.scripts.fr]
  established = "Canada, hors de l'Espace économique européen"
"""


def notice_text(client) -> str:
    """The notice as a reader reads it: the main element's text, tags removed."""
    main = one(client.get("/privacy").get_data(as_text=True), "main")
    text = " ".join(main.get_text(" ").split())
    return re.sub(r" ([,.;:)])", r"\1", text)


def registry_text(change=lambda text: text) -> str:
    return change(BUILTIN_REGISTRY.read_text(encoding="utf-8"))


def write_registry(tmp_path: Path, text: str) -> str:
    path = tmp_path / "registry.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_notice_is_a_declared_page_of_the_site(app, client):
    assert client.get("/privacy").status_code == 200
    with app.test_request_context():
        assert page_exists("/privacy")


def test_the_notice_names_the_controller_the_officer_and_the_authority(app, client):
    controller = app.extensions["consent"].registry.controller
    text = notice_text(client)
    assert controller.name in text
    assert controller.address in text
    assert controller.email in text
    assert controller.dpo.email in text
    assert controller.authority.name in text
    assert controller.authority.url in text
    for processor in controller.processors:
        assert processor.name in text
        assert processor.established in text


def test_the_notice_lists_every_category_cookie_script_and_legal_basis(app, client):
    registry = app.extensions["consent"].registry
    text = notice_text(client)
    for category in registry.categories:
        assert category.title in text
        assert category.description in text
        for cookie in category.cookies:
            assert f"{cookie.name}, set by {cookie.provider}, kept for {cookie.duration}" in text
            assert f"{cookie.name} ({category.title}): {cookie.duration}" in text
        for script in category.scripts:
            assert script.static in text
    assert registry.controller.necessary_basis in text
    assert text.count("your consent, Art. 6(1)(a) GDPR") == len(registry.optional_categories)


def test_the_notice_names_every_provider_what_it_receives_and_where_it_is(app, client):
    registry = app.extensions["consent"].registry
    text = notice_text(client)
    assert registry.providers
    for provider in registry.providers:
        entry = text[text.index(provider.name) :]
        assert "receives your IP address" in entry
        assert f"Established in: {provider.established}" in entry
        for cookie in provider.cookies:
            assert f"may set {cookie.name}" in entry
            assert f"{cookie.name} of {provider.name}: {cookie.duration}" in text


def test_the_notice_states_every_retention_period_from_the_settings(app_factory):
    app = app_factory(
        CONSENT_LIFETIME_DAYS=90,
        CONSENT_RECORD_RETENTION_DAYS=1234,
        PAGE_MEASUREMENT_RETENTION_DAYS=321,
    )
    text = notice_text(app.test_client())
    assert "Your cookie choice: 90 days" in text
    assert "1234 days after a newer choice replaces it" in text
    assert "Page views and page load timings: 321 days" in text


def test_the_notice_explains_how_to_use_every_right_and_when_it_changed(app, client):
    registry = app.extensions["consent"].registry
    page = client.get("/privacy").get_data(as_text=True)
    for right in RIGHTS:
        assert f'id="right-{right}"' in page
    assert f'datetime="{registry.controller.updated.isoformat()}"' in page
    assert f"revision {registry.revision} of our notice" in notice_text(client)


def test_a_cookie_or_third_party_script_added_to_the_registry_appears_in_the_notice(
    app_factory, tmp_path
):
    marker = '  static = "features/pageviews.js"\n'
    text = registry_text(lambda t: t.replace(marker, marker + EXTRA_SCRIPT + EXTRA_COOKIE, 1))
    app = app_factory(CONSENT_REGISTRY=write_registry(tmp_path, text))
    notice = notice_text(app.test_client())
    assert "gu_visit_depth (Analytics): 2 hours" in notice
    assert "Example Stats Ltd, when you allow the Analytics group" in notice
    assert "https://stats.example.org/count.js" in notice
    assert "Established in: Canada, outside the European Economic Area" in notice


def test_the_controller_is_part_of_the_notice_hash():
    data = tomllib.loads(registry_text())
    changed = copy.deepcopy(data)
    changed["controller"]["email"] = "someone-else@globalupdates.example"
    assert parse_registry(changed).notice_hash != parse_registry(data).notice_hash


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda t: t.replace("[controller]", "[controller_gone]"), "[controller]"),
        (
            lambda t: t.replace('email = "privacy@globalupdates.example"', 'email = "nobody"'),
            "controller.email",
        ),
        (lambda t: t.replace('address = "4 Quayside', 'addresses = "4 Quayside'), "address"),
        (
            lambda t: re.sub(r"^updated = .*$", 'updated = "soon"', t, count=1, flags=re.M),
            "controller.updated",
        ),
        (
            lambda t: t.replace('email = "dpo@globalupdates.example"', 'email = ""'),
            "controller.dpo.email",
        ),
        (
            lambda t: t.replace(
                'url = "https://dataprotection.example"', 'url = "http://dpa.example"'
            ),
            "controller.authority.url",
        ),
        (
            lambda t: t.replace(
                '  established = "Exampleland, in the', '  where = "Exampleland', 1
            ),
            r"controller.processors\[0\].established",
        ),
        (lambda t: t.replace("necessary_basis =", "basis ="), "controller.necessary_basis"),
        (
            lambda t: t.replace('established = "United States', 'established = """\n"""\nx = "', 1),
            "providers.vidmoor.established",
        ),
    ],
)
def test_a_bad_controller_table_stops_start_up_with_the_key_named(
    app_factory, tmp_path, change, key
):
    text = registry_text(change)
    assert text != registry_text(), "the change must apply to the shipped registry"
    path = write_registry(tmp_path, text)
    with pytest.raises(RegistryError, match=key):
        load_registry(path)
    with pytest.raises(RegistryError, match=key):
        app_factory(CONSENT_REGISTRY=path)


@pytest.mark.parametrize("path", ["/", ARTICLE, "/consent", "/cookie-policy", "/privacy", "/nope"])
def test_every_footer_links_the_privacy_policy_the_cookie_policy_and_cookie_settings(client, path):
    footer = one(client.get(path).get_data(as_text=True), "footer.site-footer")
    assert link_targets(footer, "Privacy policy") == ["/privacy"]
    assert link_targets(footer, "Cookie policy") == ["/cookie-policy"]
    (settings,) = link_targets(footer, "Cookie settings")
    assert re.fullmatch(r"/consent(\?next=[^\"]*)?", settings)
