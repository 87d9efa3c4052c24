"""The consent registry drives everything, and an operator can replace it."""

from __future__ import annotations

import tomllib

import pytest

from globalupdates.consent.model.registry_file import BUILTIN_REGISTRY, RegistryError, load_registry
from tests.support.consent import (
    BUILTIN_REVISION,
    THIRD_PARTY,
    choose,
    operator_registry,
    with_revision,
)
from tests.support.html import attribute, select


def test_builtin_registry_declares_the_five_categories_in_order():
    registry = load_registry()
    assert registry.keys == ("necessary", "functional", "analytics", "performance", "advertisement")
    assert registry.required_keys == {"necessary"}
    assert all(category.description for category in registry.categories)


def test_operator_script_is_rendered_only_when_its_category_is_granted(app_factory, tmp_path):
    app = app_factory(CONSENT_REGISTRY=str(operator_registry(tmp_path, THIRD_PARTY)))
    client = app.test_client()
    operator_script = 'script[src*="stats.example.net"]'
    assert select(client.get("/").get_data(as_text=True), operator_script) == []
    choose(client, "save", ("functional",))
    assert select(client.get("/").get_data(as_text=True), operator_script) == []
    choose(client, "save", ("analytics",))
    html = client.get("/").get_data(as_text=True)
    [tag] = select(html, 'script[src="https://stats.example.net/tag.js"]')
    assert attribute(tag, "data-category") == "analytics"
    script_src = client.get("/").headers["Content-Security-Policy"].split("script-src ")[1]
    assert "https://stats.example.net" in script_src.split(";")[0].split()
    policy = client.get("/cookie-policy").get_data(as_text=True)
    rows = [
        [cell.get_text(strip=True) for cell in select(row, "td")]
        for row in select(policy, ".cookie-table tbody tr")
    ]
    assert ["_ex_*", "Example Stats", "1 hour"] in [row[:3] for row in rows]


def test_operator_cookie_is_cleared_with_its_declared_domain(app_factory, tmp_path):
    app = app_factory(CONSENT_REGISTRY=str(operator_registry(tmp_path, THIRD_PARTY)))
    client = app.test_client()
    choose(client, "accept_all")
    client.set_cookie("_ex_id", "123")
    response = choose(client, "reject_all")
    [cleared] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("_ex_id=")]
    assert "Domain=example.org" in cleared or "Domain=.example.org" in cleared
    assert "Max-Age=0" in cleared


def test_a_new_revision_asks_the_reader_again(app_factory, tmp_path):
    first = app_factory()
    client = first.test_client()
    choose(client, "accept_all")
    assert "data-category" in client.get("/").get_data(as_text=True)
    cookie = client.get_cookie("gu_session").value
    raised_registry = operator_registry(tmp_path, revision=BUILTIN_REVISION + 1)
    raised = app_factory(CONSENT_REGISTRY=str(raised_registry))
    again = raised.test_client()
    again.set_cookie("gu_session", cookie)
    html = again.get("/").get_data(as_text=True)
    assert 'id="consent-banner"' in html
    assert "data-category" not in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: with_revision(t, 1).replace("revision = 1", 'revision = "one"'), "revision"),
        (lambda t: t.replace('key = "analytics"', 'key = "Analytics!"'), "key"),
        (lambda t: t.replace('key = "performance"', 'key = "analytics"'), "declared twice"),
        (lambda t: t.replace("max_age = 86400", "max_age = -5"), "max_age"),
        (lambda t: t.replace('static = "features/timing.js"', 'src = "http://x"'), "src"),
        (lambda t: t.replace("required = true", "required = false", 1), "necessary"),
        (lambda t: t + "\n[[[broken", "not valid TOML"),
    ],
)
def test_a_bad_registry_is_refused_at_start_with_the_key_named(tmp_path, change, message):
    path = tmp_path / "bad.toml"
    path.write_text(change(BUILTIN_REGISTRY.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def test_every_declared_cookie_is_described_with_a_duration():
    data = tomllib.loads(BUILTIN_REGISTRY.read_text(encoding="utf-8"))
    for category in data["categories"]:
        for cookie in category.get("cookies", []):
            assert cookie["description"] and cookie["max_age"] > 0


def test_the_builtin_registry_names_the_video_hosts_and_the_analytics_vendor_as_third_parties():
    """Functional sends data to the two video hosts and analytics to its vendor; the site's own
    performance and advertisement send nothing elsewhere, and the hosting and mail processors
    serve every reader, so none of them is named in the first layer."""
    registry = load_registry()
    for language, videos, vendor in (
        (
            "en",
            ("Vidmoor (demonstration video host)", "Clipwell (demonstration video host)"),
            "Tallyhouse Analytics (demonstration vendor)",
        ),
        (
            "de",
            ("Vidmoor (Videoplattform zur Vorführung)", "Clipwell (Videoplattform zur Vorführung)"),
            "Tallyhouse Analytics (Anbieter zur Vorführung)",
        ),
        (
            "fr",
            (
                "Vidmoor (hébergeur vidéo de démonstration)",
                "Clipwell (hébergeur vidéo de démonstration)",
            ),
            "Tallyhouse Analytics (prestataire de démonstration)",
        ),
    ):
        found = registry.in_language(language).third_parties
        assert [(each.category.key, each.names) for each in found] == [
            ("functional", videos),
            ("analytics", (vendor,)),
        ]
