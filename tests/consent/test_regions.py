"""Regions: the reader's regime comes from a trusted edge header, and decides what runs
before a choice; only the regime, never the place, reaches the page."""

from __future__ import annotations

import tomllib

import pytest

from globalupdates.consent.model.regions import OPT_IN, OPT_OUT
from globalupdates.consent.model.registry_file import (
    BUILTIN_REGISTRY,
    RegistryError,
    load_registry,
    parse_registry,
)
from tests.support.consent import (
    GPC,
    checked_boxes,
    choose,
    gated_categories,
    in_edition,
    records,
    stored_choice,
)
from tests.support.html import one, parse, select, texts

PAGE = "/"  # the front page: there without any article imported

EDGE = {"COUNTRY_HEADER": "X-Country", "REGION_HEADER": "X-Region", "PROXY_FIX_X_FOR": 1}
CALIFORNIA = {"X-Country": "US", "X-Region": "CA"}
GERMANY = {"X-Country": "DE"}
OPT_OUT_RUNS = {"analytics", "performance"}
DO_NOT_SELL = "Do Not Sell or Share My Personal Information"
# The opt-in notice's promise that nothing optional runs without the reader's permission, in
# each language: words an opt-out place's reader must never be shown.
PERMISSION_ONLY = {
    "en": ("We use only what this page needs", "With your permission we would also use"),
    "de": ("Wir verwenden nur, was diese Seite braucht", "Mit Ihrer Einwilligung würden wir"),
    "fr": ("Nous n'utilisons que ce dont cette page a besoin", "Avec votre consentement, nous"),
}


@pytest.fixture
def edge_client(app_factory):
    return app_factory(**EDGE).test_client()


def links_to_do_not_sell(html: str) -> list[str]:
    return texts(html, "a.do-not-sell")


def words(markup: object) -> str:
    """The text a reader sees, with its spaces and line breaks made single spaces."""
    return " ".join(parse(str(markup)).get_text(" ").split())


def test_the_demo_registry_maps_the_us_opt_out_states_and_leaves_every_other_place_opt_in():
    regions = load_registry().regions
    for state in ("CA", "CO", "CT", "DE", "MD", "MT", "NE", "NH", "NJ", "OR", "TX", "MN"):
        assert regions.regime_name_of("US", state) == OPT_OUT, state
    for country, region in [
        ("US", "NY"),
        ("US", None),
        ("DE", None),
        ("GB", None),
        ("CH", None),
        ("FR", "CA"),
        ("BR", None),
        ("JP", "13"),
    ]:
        assert regions.regime_name_of(country, region) == OPT_IN, (country, region)
    assert regions.regime(OPT_OUT).runs_until_refused == OPT_OUT_RUNS


@pytest.mark.parametrize(
    "country, region",
    [
        ("XX", "CA"),
        ("T1", "CA"),
        ("", "CA"),
        (None, None),
        ("USA", "CA"),
        ("U$", "CA"),
        ("US", "CA;"),
        ("US", "C" * 50),
    ],
)
def test_unknown_tor_and_malformed_places_are_opt_in(country, region):
    assert load_registry().regions.regime_name_of(country, region) == OPT_IN


def test_codes_are_read_in_any_letter_case_and_with_spaces_around():
    assert load_registry().regions.regime_name_of(" us ", "ca ") == OPT_OUT


def test_a_californian_first_visit_runs_the_opt_out_categories_and_links_do_not_sell(
    edge_client,
):
    html = edge_client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    assert gated_categories(html) == OPT_OUT_RUNS
    assert select(html, "#consent-banner [data-regime=opt-out]")
    assert links_to_do_not_sell(html) == [DO_NOT_SELL, DO_NOT_SELL]  # banner and footer
    assert select(html, "footer a.do-not-sell")
    preferences = edge_client.get("/consent", headers=CALIFORNIA).get_data(as_text=True)
    assert checked_boxes(preferences) == OPT_OUT_RUNS
    assert select(preferences, "#do-not-sell button[value=reject_all]")


def test_a_german_first_visit_is_opt_in_with_no_do_not_sell_link(edge_client):
    html = edge_client.get(PAGE, headers=GERMANY).get_data(as_text=True)
    assert gated_categories(html) == set()
    assert links_to_do_not_sell(html) == []
    assert not select(html, "[data-regime]")


def test_the_place_headers_are_ignored_unless_a_proxy_is_trusted(app_factory):
    client = app_factory(COUNTRY_HEADER="X-Country", REGION_HEADER="X-Region").test_client()
    html = client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    assert gated_categories(html) == set()
    assert links_to_do_not_sell(html) == []


def test_without_any_setting_every_reader_is_opt_in(client):
    html = client.get(PAGE, headers={**CALIFORNIA, "CF-IPCountry": "US"}).get_data(as_text=True)
    assert gated_categories(html) == set()
    assert links_to_do_not_sell(html) == []


def test_gpc_in_an_opt_out_place_refuses_on_the_first_request_and_the_page_says_so(
    app, edge_client
):
    html = edge_client.get(PAGE, headers={**CALIFORNIA, **GPC}).get_data(as_text=True)
    assert gated_categories(html) == set()
    notice = " ".join(texts(html, "#consent-banner [data-gpc-refused]"))
    assert "Global Privacy Control" in notice and "Analytics" in notice
    assert len(select(html, "#consent-banner .consent-gpc")) == 1, "one notice of the signal"
    preferences = edge_client.get("/consent", headers={**CALIFORNIA, **GPC})
    assert checked_boxes(preferences.get_data(as_text=True)) == set()
    assert select(preferences.get_data(as_text=True), "#do-not-sell [data-gpc-refused]")
    assert stored_choice(edge_client) is None  # a GET writes nothing
    assert records(app) == []


def test_gpc_revises_a_stored_opt_out_default_and_records_it(app, edge_client):
    choose(edge_client, "save", ("analytics", "performance"), headers=CALIFORNIA)
    html = edge_client.get(PAGE, headers={**CALIFORNIA, **GPC}).get_data(as_text=True)
    assert gated_categories(html) == set()
    assert [record.action for record in records(app)] == ["save", "gpc_opt_out"]


def test_the_do_not_sell_opt_out_is_remembered(app, edge_client):
    choose(edge_client, "reject_all", headers=CALIFORNIA)
    html = edge_client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    assert gated_categories(html) == set()
    assert not select(html, "#consent-banner")
    assert links_to_do_not_sell(html) == [DO_NOT_SELL]  # the footer keeps it


def test_an_active_choice_is_respected_everywhere(edge_client):
    choose(edge_client, "accept_all", headers=CALIFORNIA)
    for place in (CALIFORNIA, GERMANY, {}):
        html = edge_client.get(PAGE, headers=place).get_data(as_text=True)
        assert not select(html, "#consent-banner"), place
        assert "analytics" in gated_categories(html), place
    choose(edge_client, "reject_all", headers=GERMANY)
    html = edge_client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    assert gated_categories(html) == set()
    assert not select(html, "#consent-banner")


def test_categories_left_on_by_an_opt_out_default_are_asked_for_in_an_opt_in_place(edge_client):
    choose(edge_client, "save", ("functional", "analytics", "performance"), headers=CALIFORNIA)
    assert sorted(stored_choice(edge_client)["defaulted"]) == ["analytics", "performance"]
    californian = edge_client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    assert not select(californian, "#consent-banner")
    assert gated_categories(californian) >= OPT_OUT_RUNS
    german = edge_client.get(PAGE, headers=GERMANY).get_data(as_text=True)
    assert select(german, "#consent-banner")
    assert not gated_categories(german) & OPT_OUT_RUNS
    preferences = edge_client.get("/consent", headers=GERMANY).get_data(as_text=True)
    assert checked_boxes(preferences) == {"functional"}
    choose(edge_client, "save", ("functional", "analytics"), headers=GERMANY)
    german = edge_client.get(PAGE, headers=GERMANY).get_data(as_text=True)
    assert not select(german, "#consent-banner")
    assert "analytics" in gated_categories(german)
    assert "performance" not in gated_categories(german)


def test_a_category_granted_before_stays_granted_when_saved_again_in_an_opt_out_place(
    edge_client,
):
    choose(edge_client, "save", ("analytics",), headers=GERMANY)
    choose(edge_client, "save", ("analytics", "performance"), headers=CALIFORNIA)
    assert stored_choice(edge_client)["defaulted"] == ["performance"]


def test_accept_all_in_an_opt_out_place_is_consent_everywhere(edge_client):
    choose(edge_client, "accept_all", headers=CALIFORNIA)
    assert "defaulted" not in stored_choice(edge_client)


@pytest.mark.parametrize(
    "regions, message",
    [
        ('[regions.places]\n"usa" = "opt-in"\n', "is not a place"),
        ('[regions.places]\nUS-CA = "opt-maybe"\n', "must be one of"),
        ('[regions]\nopt_out_categories = ["necessary"]\n', "not an optional category"),
        ('[regions.places]\nUS-CA = "opt-out"\n', "must name the categories"),
        ("[regions]\ncountries = []\n", "is not a key"),
    ],
)
def test_a_registry_with_bad_regions_stops_start_up_naming_the_key(tmp_path, regions, message):
    text = load_registry_text_without_regions() + "\n" + regions
    path = tmp_path / "registry.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def load_registry_text_without_regions() -> str:
    from globalupdates.consent.model.registry_file import BUILTIN_REGISTRY

    text = BUILTIN_REGISTRY.read_text(encoding="utf-8")
    return text[: text.index("\n[regions]")]


def test_google_consent_mode_grants_what_an_opt_out_place_runs_until_refused(app_factory):
    from tests.consent.test_consent_mode import gtag_calls

    client = app_factory(**EDGE, GOOGLE_TAG_ID="G-ABC123XYZ").test_client()
    californian = client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    [(_, defaults), (kind, update)] = gtag_calls(californian)
    assert set(defaults.values()) == {"denied"} and kind == "update"
    assert {signal for signal, value in update.items() if value == "granted"} == {
        "analytics_storage"
    }
    with_gpc = client.get(PAGE, headers={**CALIFORNIA, **GPC}).get_data(as_text=True)
    assert all(value == "denied" for _, values in gtag_calls(with_gpc) for value in values.values())
    german = client.get(PAGE, headers=GERMANY).get_data(as_text=True)
    assert [kind for kind, _ in gtag_calls(german)] == ["default"]


@pytest.mark.parametrize("language", PERMISSION_ONLY)
def test_the_first_layer_promises_permission_only_where_nothing_runs_without_it(
    edge_client, language
):
    notice = load_registry().in_language(language).notice
    assert notice.text_opt_out is not None
    promise = list(PERMISSION_ONLY[language])
    for place, shown, untrue, promised in [
        (GERMANY, notice.text, notice.text_opt_out, promise),
        (CALIFORNIA, notice.text_opt_out, notice.text, []),
    ]:
        banner = one(page_in(edge_client, "/", language, place), "#consent-banner")
        settings = one(page_in(edge_client, "/consent", language, place), ".preferences")
        for said in (words(banner), words(settings)):
            assert shown in said and untrue not in said
            assert [phrase for phrase in promise if phrase in said] == promised


@pytest.mark.parametrize("language", PERMISSION_ONLY)
def test_the_opt_out_banner_names_what_runs_right_after_its_text_and_once(edge_client, language):
    edition = load_registry().in_language(language)
    banner = one(page_in(edge_client, "/", language, CALIFORNIA), "#consent-banner")
    paragraphs = [words(p) for p in select(banner, ".consent-notice > p")]
    regime = words(one(banner, "[data-regime=opt-out]"))
    assert paragraphs[:2] == [edition.notice.text_opt_out, regime]
    for key in sorted(OPT_OUT_RUNS):
        title = edition.category(key).title
        assert title in regime and title not in edition.notice.text_opt_out


def page_in(client, path: str, language: str, place: dict[str, str]) -> str:
    response = client.get(in_edition(path, language), headers=place)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def builtin_registry_data() -> dict:
    return tomllib.loads(BUILTIN_REGISTRY.read_text(encoding="utf-8"))


def test_an_opt_out_place_needs_a_notice_text_that_does_not_promise_permission():
    data = builtin_registry_data()
    del data["notice"]["text_opt_out"]
    with pytest.raises(RegistryError, match="notice.text_opt_out is required"):
        parse_registry(data)
    data["regions"]["places"] = {
        place: regime for place, regime in data["regions"]["places"].items() if regime == OPT_IN
    }
    assert parse_registry(data).notice.text_for(OPT_IN) == load_registry().notice.text


@pytest.mark.parametrize("language", ["de", "fr"])
def test_the_opt_out_text_is_needed_in_every_language(language):
    data = builtin_registry_data()
    del data["notice"][language]["text_opt_out"]
    with pytest.raises(RegistryError, match=f"notice.text_opt_out has no '{language}' text"):
        parse_registry(data)
