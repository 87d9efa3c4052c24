"""Global Privacy Control: honoured from the first response, never silently overridden."""

from __future__ import annotations

import time

import pytest

from tests.support.consent import (
    GPC,
    OPTIONAL,
    checked_boxes,
    choose,
    gated_categories,
    in_edition,
    records,
    set_cookie_names,
    store_choice,
    stored_choice,
)
from tests.support.html import select, texts
from tests.support.pages import ARTICLE, MORVELLE_STATION, NACHTZUG

# Where a page says the signal was honoured.
HONOURED = ".consent-gpc"


def test_first_get_with_gpc_shows_advertisement_off_and_says_the_signal_was_honoured(client):
    preferences = client.get("/consent", headers=GPC).get_data(as_text=True)
    assert "advertisement" not in checked_boxes(preferences)
    assert "Opt-out request honored" in " ".join(texts(preferences, HONOURED))
    page = client.get(ARTICLE, headers=GPC)
    html = page.get_data(as_text=True)
    assert select(html, f"#consent-banner {HONOURED}")
    assert gated_categories(html) == set()
    assert "gu_ad_cap" not in set_cookie_names(page)


@pytest.mark.parametrize("value", ["0", "true", "1 ", " 1", "yes", "", "11"])
def test_only_the_exact_value_1_counts_as_gpc(client, value):
    html = client.get("/consent", headers={"Sec-GPC": value}).get_data(as_text=True)
    assert select(html, HONOURED) == []
    choose(client, "accept_all", headers={"Sec-GPC": value})
    assert "advertisement" in stored_choice(client)["categories"]


def test_accept_all_under_gpc_grants_everything_but_advertisement_and_notes_gpc(app, client):
    choose(client, "accept_all", headers=GPC)
    assert set(stored_choice(client)["categories"]) == {"necessary", *OPTIONAL} - {"advertisement"}
    html = client.get(ARTICLE, headers=GPC).get_data(as_text=True)
    assert gated_categories(html) == set(OPTIONAL) - {"advertisement"}
    [record] = records(app)
    assert record.action == "accept_all" and record.gpc is True
    assert "advertisement" not in record.categories


def test_only_an_explicit_tick_grants_advertisement_under_gpc_and_it_stands(app, client):
    choose(client, "save", ("advertisement",), headers=GPC)
    assert "advertisement" in stored_choice(client)["categories"]
    html = client.get(ARTICLE, headers=GPC).get_data(as_text=True)
    assert gated_categories(html) == {"advertisement"}
    assert [(r.action, r.gpc) for r in records(app)] == [("save", True)]


def test_gpc_opt_out_revises_a_grant_made_without_the_signal_and_records_it_once(app, client):
    choose(client, "accept_all")
    consent_id = stored_choice(client)["id"]
    client.set_cookie("gu_ad_cap", "1")
    first = client.get(ARTICLE, headers=GPC)
    assert "advertisement" not in gated_categories(first.get_data(as_text=True))
    assert any(h.startswith("gu_ad_cap=;") for h in first.headers.getlist("Set-Cookie"))
    choice = stored_choice(client)
    assert "advertisement" not in choice["categories"] and choice["id"] == consent_id
    assert "analytics" in choice["categories"]
    client.get("/", headers=GPC)
    preferences = client.get("/consent", headers=GPC).get_data(as_text=True)
    assert checked_boxes(preferences) == set(OPTIONAL) - {"advertisement"}
    actions = [(r.action, r.gpc, r.consent_id) for r in records(app)]
    assert actions == [("accept_all", False, consent_id), ("gpc_opt_out", True, consent_id)]
    assert "advertisement" not in records(app)[-1].categories


def test_a_replayed_old_cookie_is_recorded_as_revised_once(app, app_factory, client):
    """The cookie from before the revision, sent again and again with the signal (by a
    restored tab, another device, a worker that never saw it), adds no record."""
    choose(client, "accept_all")
    consent_id = stored_choice(client)["id"]
    old_cookie = client.get_cookie("gu_session").value
    other_worker = app_factory()
    for site in (app, app, other_worker, other_worker, app):
        replay = site.test_client()
        replay.set_cookie("gu_session", old_cookie)
        html = replay.get(ARTICLE, headers=GPC).get_data(as_text=True)
        assert "advertisement" not in gated_categories(html)
        assert "analytics" in gated_categories(html)
    actions = [(r.action, r.consent_id) for r in records(app)]
    assert actions == [("accept_all", consent_id), ("gpc_opt_out", consent_id)]


def test_a_new_choice_revised_by_gpc_is_recorded_again(app, client):
    choose(client, "accept_all")
    client.get("/", headers=GPC)
    time.sleep(1.05)  # a choice's time is kept in whole seconds
    choose(client, "accept_all")  # without the signal: advertisement granted again
    client.get("/", headers=GPC)
    client.get(ARTICLE, headers=GPC)
    actions = [r.action for r in records(app)]
    assert actions == ["accept_all", "gpc_opt_out", "accept_all", "gpc_opt_out"]


def test_static_files_never_apply_the_opt_out(app, client):
    store_choice(client, OPTIONAL)
    client.get("/static/css/site.css", headers=GPC).close()
    assert records(app) == []
    assert "advertisement" in stored_choice(client)["categories"]


def test_gpc_changes_nothing_and_records_nothing_when_advertisement_was_not_granted(app, client):
    choose(client, "save", ("analytics",))
    client.get("/", headers=GPC)
    assert [r.action for r in records(app)] == ["save"]


def test_gpc_opt_out_does_not_renew_the_choice(client):
    from datetime import UTC, datetime, timedelta

    made = datetime.now(UTC) - timedelta(days=30)
    store_choice(client, OPTIONAL, made_at=made)
    client.get("/", headers=GPC)
    assert stored_choice(client)["made_at"] == int(made.timestamp())


def test_well_known_gpc_resource(client):
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["gpc"] is True
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    from datetime import date

    date.fromisoformat(body["lastUpdate"])


# What a GPC reader is told in each edition: that the request was honoured, and what it refused.
GPC_STATUS = {
    "en": ("Opt-out request honored", "we refused Advertisement on your behalf"),
    "de": ("Opt-out-Anfrage umgesetzt", "die Kategorie Werbung in Ihrem Namen abgelehnt"),
    "fr": ("Demande d'opposition respectée", "refusé en votre nom la catégorie Publicité"),
}
EDITION_ARTICLES = {"en": ARTICLE, "de": NACHTZUG, "fr": MORVELLE_STATION}


@pytest.mark.parametrize("lang", GPC_STATUS)
def test_the_banner_and_the_preferences_say_gpc_was_honoured_and_what_it_refused(client, lang):
    headline, refused = GPC_STATUS[lang]
    for path in (EDITION_ARTICLES[lang], in_edition("/", lang), in_edition("/consent", lang)):
        html = client.get(path, headers=GPC).get_data(as_text=True)
        [status] = texts(html, HONOURED)
        assert status.startswith(headline) and refused in status
        assert texts(html, ".gpc-honoured") == [headline]
        assert select(client.get(path).get_data(as_text=True), HONOURED) == []


@pytest.mark.parametrize("lang", GPC_STATUS)
def test_after_a_choice_under_gpc_the_preferences_still_say_it_was_honoured(client, lang):
    choose(client, "accept_all", headers=GPC, language=lang)
    html = client.get(in_edition("/consent", lang), headers=GPC).get_data(as_text=True)
    [status] = texts(html, HONOURED)
    assert status.startswith(GPC_STATUS[lang][0]) and GPC_STATUS[lang][1] in status


def test_a_grant_the_reader_made_under_gpc_is_said_to_override_it_not_honoured(client):
    choose(client, "save", ("advertisement",), headers=GPC)
    html = client.get("/consent", headers=GPC).get_data(as_text=True)
    [status] = texts(html, HONOURED)
    assert status.startswith("Opt-out signal received")
    assert "you switched on Advertisement yourself" in status
    assert texts(html, ".gpc-honoured") == []


def test_a_gpc_opt_out_that_revised_a_grant_is_said_honoured_and_listed_in_the_history(client):
    choose(client, "accept_all")
    html = client.get("/consent", headers=GPC).get_data(as_text=True)
    assert texts(html, ".gpc-honoured") == ["Opt-out request honored"]
    history = client.get("/consent/history", headers={**GPC, "Accept": "application/json"})
    newest, first = history.get_json()["records"]
    assert (newest["action"], newest["gpc"]) == ("gpc_opt_out", True)
    assert "advertisement" not in newest["categories"]
    assert (first["action"], first["gpc"]) == ("accept_all", False)
    [row, _] = select(
        client.get("/consent/history", headers=GPC).get_data(as_text=True), "tbody tr"
    )
    cells = {cell["data-label"]: cell.get_text(strip=True) for cell in row.select("td")}
    assert cells["Action"] == "Global Privacy Control opt-out"
    assert cells["Global Privacy Control"] == "sent"
