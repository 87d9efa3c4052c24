"""A choice per service inside a category: the registry, the form, the session, what a page
runs and frames, the policy, the cookies and the proof all follow the services granted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import chain, combinations

import pytest

from globalupdates.consent import page_variant
from globalupdates.consent.model.choice import ConsentState, gpc_opt_out, new_choice
from globalupdates.consent.model.registry_file import RegistryError, load_registry
from globalupdates.consent.model.variant_cookie import variant_value
from globalupdates.consent.web.cookie_firewall import refusal
from globalupdates.extensions import db
from tests.support.consent import (
    BUILTIN_REGISTRY,
    SAME_ORIGIN,
    append_old_record,
    checked_boxes,
    checked_services,
    choose,
    records,
    store_choice,
    stored_choice,
)
from tests.support.html import attributes

VIDMOOR_ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"
CLIPWELL_ARTICLE = "/articles/ostervale-lantern-boats-return"
VIDMOOR = "https://player.vidmoor.example"
CLIPWELL = "https://embed.clipwell.example"
TALLY_SCRIPT = "https://cdn.tallyhouse.example/tally.js"
TALLY_ORIGINS = ("https://cdn.tallyhouse.example", "https://collect.tallyhouse.example")


def policy(response) -> dict[str, list[str]]:
    directives = response.headers["Content-Security-Policy"].split(";")
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in directives) if d}


def frames(html: str) -> list[str]:
    return attributes(html, "iframe", "src")


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["consent", *args])


def sql(app, statement: str) -> None:
    with app.app_context():
        db.session.execute(db.text(statement))
        db.session.commit()


# The registry


def test_the_demo_registry_declares_two_video_services_and_a_third_party_analytics_service():
    registry = load_registry(None)
    assert [(s.key, s.category) for s in registry.services] == [
        ("vidmoor", "functional"),
        ("clipwell", "functional"),
        ("tallyhouse", "analytics"),
    ]
    for language in ("en", "de", "fr"):
        shown = registry.in_language(language)
        for service in shown.services:
            assert service.name and service.description and service.established
            assert all(cookie.description for cookie in service.cookies)
    assert registry.in_language("de").service("tallyhouse").description.startswith("Ein fiktiver")
    assert registry.services_of("performance") == ()
    assert registry.find_cookie_owner("_tally_id")[1].key == "tallyhouse"


def test_every_demo_service_lives_on_a_reserved_example_domain():
    for service in load_registry(None).services:
        hosts = [*service.origins, *(script.src or "" for script in service.scripts)]
        assert all(".example" in host for host in hosts), service.key


TALLYHOUSE_CATEGORY = 'name = "Tallyhouse Analytics (demonstration vendor)"\ncategory = "analytics"'


def registry_with(tmp_path, old: str, new: str):
    """The built-in registry with one edit, loaded as an operator's copy."""
    text = BUILTIN_REGISTRY.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "registry.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load_registry(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('key = "tallyhouse"', 'key = "vidmoor"', "service key 'vidmoor' is declared twice"),
        (
            TALLYHOUSE_CATEGORY,
            TALLYHOUSE_CATEGORY.replace('"analytics"', '"necessary"'),
            "services.tallyhouse.category must name an optional category",
        ),
    ],
)
def test_a_service_that_clashes_or_names_no_optional_category_stops_start_up(
    tmp_path, old, new, message
):
    with pytest.raises(RegistryError, match=message):
        registry_with(tmp_path, old, new)


# The choice


def test_a_category_ticked_alone_grants_all_of_its_services(app, client):
    assert choose(client, "save", ("functional",)).status_code == 303
    stored = stored_choice(client)
    assert stored["services"] == ["clipwell", "vidmoor"]
    assert records(app)[-1].services == ["vidmoor", "clipwell"]


def test_a_ticked_service_grants_only_itself_inside_its_category(app, client):
    choose(client, "save", ("functional", "analytics"), services=("clipwell",))
    stored = stored_choice(client)
    assert set(stored["categories"]) == {"necessary", "functional", "analytics"}
    assert stored["services"] == ["clipwell", "tallyhouse"]
    [record] = records(app)
    assert record.services == ["clipwell", "tallyhouse"]


def test_a_service_ticked_without_its_category_grants_the_category_too(client):
    choose(client, "save", services=("vidmoor",))
    stored = stored_choice(client)
    assert set(stored["categories"]) == {"necessary", "functional"}
    assert stored["services"] == ["vidmoor"]


def test_clearing_a_granted_category_refuses_it_though_its_service_boxes_stay_ticked(app, client):
    """Without a script the service boxes stay as the page showed them: ticked. Clearing the
    category's box is still a withdrawal of the category and of all of its services."""
    choose(client, "save", ("functional",))
    assert checked_services(client.get("/consent").get_data(as_text=True)) == {
        "vidmoor",
        "clipwell",
    }
    choose(client, "save", services=("vidmoor", "clipwell"))
    stored = stored_choice(client)
    assert stored["categories"] == ["necessary"] and stored["services"] == []
    assert records(app)[-1].action == "withdrawal"


def test_the_script_can_keep_a_category_while_refusing_all_of_its_services(client):
    choose(client, "save", ("functional",), exact_services=True)
    stored = stored_choice(client)
    assert "functional" in stored["categories"]
    assert stored["services"] == []


def test_accept_all_grants_every_service_and_reject_all_none(client):
    choose(client, "accept_all")
    assert stored_choice(client)["services"] == ["clipwell", "tallyhouse", "vidmoor"]
    choose(client, "reject_all")
    assert stored_choice(client)["services"] == []


@pytest.mark.parametrize(
    "services",
    [["nosuch"], ["vidmoor", "vidmoor"], ["x" * 500]],
)
def test_a_service_that_is_not_declared_or_is_sent_twice_is_a_400_that_stores_nothing(
    app, client, services
):
    client.get("/consent")
    response = client.post(
        "/consent",
        data={"action": "save", "functional": "on", "services": services},
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 400
    assert stored_choice(client) is None
    assert records(app) == []


def test_the_preferences_show_the_readers_services_ticked_and_none_for_a_fresh_reader(client):
    assert checked_services(client.get("/consent").get_data(as_text=True)) == set()
    choose(client, "save", ("functional",), services=("clipwell",))
    html = client.get("/consent").get_data(as_text=True)
    assert checked_services(html) == {"clipwell"}
    assert checked_boxes(html) == {"functional"}


def test_withdrawing_a_service_is_recorded_as_a_withdrawal(app, client):
    choose(client, "save", ("functional",))
    choose(client, "save", ("functional",), services=("clipwell",))
    assert [record.action for record in records(app)] == ["save", "withdrawal"]


def test_the_json_answer_names_the_services_and_reloads_when_one_is_withdrawn(client):
    choose(client, "accept_all")
    client.get("/consent")
    response = client.post(
        "/consent",
        data={
            "action": "save",
            "functional": "on",
            "analytics": "on",
            "services": ["clipwell", "tallyhouse"],
        },
        headers={**SAME_ORIGIN, "Accept": "application/json"},
    )
    answer = response.get_json()
    assert answer["services"] == ["clipwell", "tallyhouse"]
    assert answer["withdrawn_services"] == ["vidmoor"]
    assert answer["reload"] is True
    assert {"src": TALLY_SCRIPT, "category": "analytics", "service": "tallyhouse"} in answer[
        "scripts"
    ]


# What a page runs and frames


def test_a_reader_who_refuses_one_video_service_gets_the_others_embed_only(client):
    choose(client, "save", ("functional",), services=("clipwell",))
    refused = client.get(VIDMOOR_ARTICLE)
    allowed = client.get(CLIPWELL_ARTICLE)
    assert frames(refused.get_data(as_text=True)) == []
    assert frames(allowed.get_data(as_text=True)) == [f"{CLIPWELL}/v/ostervale-lanterns"]
    for response in (refused, allowed):
        directives = policy(response)
        assert directives.get("frame-src") == [CLIPWELL]
        assert VIDMOOR not in response.headers["Content-Security-Policy"]


def test_a_refused_analytics_service_sends_no_script_and_no_origin(client):
    choose(client, "save", ("analytics",), exact_services=True)
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert TALLY_SCRIPT not in html
    assert all(
        origin not in response.headers["Content-Security-Policy"] for origin in TALLY_ORIGINS
    )
    assert 'data-category="analytics"' in html, "the site's own counter still runs"


def test_a_granted_analytics_service_sends_its_script_and_allows_its_origins(client):
    choose(client, "save", ("analytics",), services=("tallyhouse",))
    response = client.get("/")
    assert attributes(response.get_data(as_text=True), "script[data-service]", "src") == [
        TALLY_SCRIPT
    ]
    directives = policy(response)
    assert "https://cdn.tallyhouse.example" in directives["script-src"]
    assert set(TALLY_ORIGINS) <= set(directives["connect-src"])


def test_a_refused_services_cookie_is_cleared_when_the_browser_sends_it(client):
    choose(client, "save", ("analytics",), exact_services=True)
    client.set_cookie("_tally_id", "abc")
    client.set_cookie("gu_reader", "123")
    headers = client.get("/").headers.getlist("Set-Cookie")
    assert any(h.startswith("_tally_id=;") and "Max-Age=0" in h for h in headers)
    assert not any(h.startswith("gu_reader=") for h in headers), "its category is granted"


def test_the_cookie_firewall_stops_a_refused_services_cookie_and_passes_a_granted_one():
    registry = load_registry(None)
    refused = ConsentState(granted=frozenset({"necessary", "analytics"}), choice=None, gpc=False)
    granted = ConsentState(
        granted=refused.granted, choice=None, gpc=False, services=frozenset({"tallyhouse"})
    )
    header = "_tally_id=1; Path=/; Max-Age=60"
    assert refusal(header, refused, registry) == (
        "the reader has not granted the service tallyhouse of analytics"
    )
    assert refusal(header, granted, registry) is None


# The variant and the caches


def subsets(items):
    items = list(items)
    return chain.from_iterable(combinations(items, n) for n in range(len(items) + 1))


def every_allowed_choice(registry):
    """Every (categories, services) pair the registry lets a reader choose."""
    for categories in subsets(registry.in_registry_order(registry.optional_keys)):
        for services in subsets(
            registry.services_in_registry_order(registry.services_in(set(categories)))
        ):
            yield frozenset(categories), frozenset(services)


def test_every_allowed_choice_has_its_own_variant_and_variant_cookie_value(app):
    registry = load_registry(None)
    choices = list(every_allowed_choice(registry))
    # performance and advertisement 2 x 2, functional off or on with 4 service sets (5),
    # analytics off or on with 2 (3): 60 choices, each twice with GPC.
    assert len(choices) == 60
    page_variants, cookie_values = set(), set()
    for categories, services in choices:
        for gpc in (False, True):
            choice = new_choice(
                categories, registry, datetime.now(UTC), None, gpc=gpc, services=services
            )
            state = ConsentState(
                granted=choice.categories,
                choice=choice,
                gpc=gpc,
                services=choice.services or frozenset(),
            )
            page_variants.add(page_variant(state, {}))
            cookie_values.add(variant_value(choice, registry.revision))
    assert len(page_variants) == len(cookie_values) == 120


def test_every_allowed_choice_gets_its_own_page_with_only_its_embeds(app):
    """Each reader's page comes from the page cache after the first; none is another's."""
    registry = load_registry(None)
    for categories, services in every_allowed_choice(registry):
        for _ in range(2):
            client = app.test_client()
            store_choice(client, categories, services=services)
            html = client.get(VIDMOOR_ARTICLE).get_data(as_text=True)
            assert (frames(html) != []) == ("vidmoor" in services), (categories, services)
            tally = TALLY_SCRIPT in html
            assert tally == ("tallyhouse" in services), (categories, services)


def test_two_readers_with_different_services_never_share_a_cached_page(app):
    first, second = app.test_client(), app.test_client()
    store_choice(first, ("functional",), services=("vidmoor",))
    store_choice(second, ("functional",), services=("clipwell",))
    for _ in range(3):
        assert frames(first.get(VIDMOOR_ARTICLE).get_data(as_text=True)) != []
        assert frames(second.get(VIDMOOR_ARTICLE).get_data(as_text=True)) == []
        assert frames(first.get(CLIPWELL_ARTICLE).get_data(as_text=True)) == []
        assert frames(second.get(CLIPWELL_ARTICLE).get_data(as_text=True)) != []


def test_a_choice_stored_before_services_grants_every_service_of_its_categories(client):
    store_choice(client, ("functional",))
    assert "services" not in stored_choice(client)
    html = client.get(VIDMOOR_ARTICLE).get_data(as_text=True)
    assert frames(html) == [f"{VIDMOOR}/embed/harrowmere-first-cycle"]


# The proof


def test_records_with_services_verify_and_altering_a_service_fails_verify(app):
    for services in (("clipwell",), ("vidmoor", "clipwell"), ()):
        choose(app.test_client(), "save", ("functional",), services=services, exact_services=True)
    result = cli(app, "verify")
    assert result.exit_code == 0, result.output
    sql(app, """UPDATE consent_record SET services = '["vidmoor"]' WHERE id = 1""")
    result = cli(app, "verify")
    assert result.exit_code == 1
    assert "record 1 was altered" in result.output
    sql(app, "UPDATE consent_record SET services = NULL WHERE id = 1")
    result = cli(app, "verify")
    assert result.exit_code == 1, "services taken away make it look like an old record"
    assert "record 1 was altered" in result.output
    assert "record 2" not in result.output


def test_export_and_show_give_the_services(app):
    choose(app.test_client(), "save", ("functional",), services=("clipwell",))
    exported = cli(app, "export").output
    assert '"services":["clipwell"]' in exported
    record = records(app)[0]
    assert "services clipwell" in cli(app, "show", record.consent_id).output


def test_the_readers_history_lists_their_services(client):
    choose(client, "save", ("functional",), services=("clipwell",))
    entries = client.get("/consent/history", headers={"Accept": "application/json"}).get_json()
    assert entries["records"][0]["services"] == ["clipwell"]
    html = client.get("/consent/history").get_data(as_text=True)
    assert "Clipwell" in html


def test_gpc_refuses_the_services_of_the_categories_it_refuses_and_keeps_the_others(tmp_path):
    registry = registry_with(
        tmp_path,
        TALLYHOUSE_CATEGORY,
        TALLYHOUSE_CATEGORY.replace('"analytics"', '"advertisement"'),
    )
    assert registry.service("tallyhouse").category == "advertisement"
    choice = new_choice(
        frozenset({"functional", "advertisement"}),
        registry,
        datetime.now(UTC),
        None,
        services=frozenset({"clipwell", "tallyhouse"}),
    )
    assert choice.services == frozenset({"clipwell", "tallyhouse"})
    revised = gpc_opt_out(choice, registry)
    assert revised is not None
    assert "advertisement" not in revised.categories
    assert revised.services == frozenset({"clipwell"})


def test_stats_count_the_opt_ins_of_each_service_and_old_records_as_every_service(app):
    old_record(app)
    choose(app.test_client(), "save", ("functional",), services=("clipwell",))
    choose(app.test_client(), "accept_all")
    choose(app.test_client(), "reject_all")
    document = json.loads(cli(app, "stats", "--format", "json").output)
    assert document["services"] == ["vidmoor", "clipwell", "tallyhouse"]
    total = document["groups"][0]
    assert total["choices"] == 4
    assert (total["service_vidmoor_opt_ins"], total["service_clipwell_opt_ins"]) == (2, 3)
    assert total["service_tallyhouse_opt_ins"] == 1
    table = cli(app, "stats").output
    assert "tallyhouse" in table.splitlines()[1]
    result = cli(app, "report", "--output", "-")
    assert result.exit_code == 0, result.output
    assert "Clipwell (demonstration video host)" in result.output


def old_record(app) -> None:
    """A record as every record was made before services: none, and a signed form without."""
    append_old_record(app, "save", 4, language="en")


def test_a_record_made_before_services_verifies_beside_records_with_services(app):
    old_record(app)
    choose(app.test_client(), "save", ("functional",), services=("clipwell",))
    [old, new] = records(app)
    assert (old.services, new.services) == (None, ["clipwell"])
    result = cli(app, "verify")
    assert result.exit_code == 0, result.output
    sql(app, """UPDATE consent_record SET services = '[]' WHERE id = 1""")
    assert "record 1 was altered" in cli(app, "verify").output


def test_a_choice_made_before_the_services_were_declared_is_asked_again(client):
    """Declaring the services raised the registry's revision: the banner comes back."""
    store_choice(client, ("functional",), revision=load_registry(None).revision - 1)
    html = client.get(VIDMOOR_ARTICLE).get_data(as_text=True)
    assert 'id="consent-banner"' in html
    assert frames(html) == []
