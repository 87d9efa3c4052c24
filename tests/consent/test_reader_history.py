"""A reader sees their own consent ID, choice and records, found only through their own
signed session, and never another reader's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.consent import GPC, OPTIONAL, choose, records, store_choice
from tests.support.html import attribute, one, texts


def consent_id_of(client) -> str:
    with client.session_transaction() as session:
        return session["consent"]["id"]


def history_json(client, path: str = "/consent/history") -> dict:
    response = client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.get_json()


def reader_with_choices(app, *actions: str) -> tuple[object, str]:
    client = app.test_client()
    for action in actions:
        choose(client, action)
    return client, consent_id_of(client)


def test_preferences_show_the_id_time_revision_and_gpc_of_the_current_choice(app):
    client = app.test_client()
    before = datetime.now(UTC).replace(microsecond=0)
    choose(client, "save", ("analytics",), headers=GPC)
    page = client.get("/consent").get_data(as_text=True)
    made = attribute(one(page, "time.choice-made"), "datetime")
    assert before <= datetime.fromisoformat(made) <= datetime.now(UTC)
    assert texts(page, "dd.consent-id code") == [consent_id_of(client)]
    revision = app.extensions["consent"].registry.revision
    assert texts(page, "dd.choice-revision") == [str(revision)]
    assert texts(page, "dd.choice-gpc")[0].startswith("Applied")


def test_preferences_say_gpc_did_not_apply_when_it_was_not_sent(client):
    choose(client, "reject_all")
    page = client.get("/consent").get_data(as_text=True)
    assert texts(page, "dd.choice-gpc")[0].startswith("Not applied")


def test_history_lists_every_record_of_the_reader_newest_first_with_the_notice_hash(app):
    client, consent_id = reader_with_choices(app, "accept_all", "reject_all")
    choose(client, "save", ("performance",))
    answer = history_json(client)
    assert answer["consent_id"] == consent_id
    assert [entry["action"] for entry in answer["records"]] == ["save", "withdrawal", "accept_all"]
    assert answer["records"][0]["categories"] == ["necessary", "performance"]
    notice_hash = app.extensions["consent"].registry.notice_hash_for("en")
    assert {entry["notice_hash"] for entry in answer["records"]} == {notice_hash}
    kept = [r.hash for r in reversed(records(app)) if r.consent_id == consent_id]
    assert [entry["hash"] for entry in answer["records"]] == kept
    page = client.get("/consent/history").get_data(as_text=True)
    assert texts(page, "code.notice-hash") == [notice_hash] * 3
    assert page.index("save") < page.index("withdrawal") < page.index("accept all")


def test_two_readers_each_see_only_their_own_records(app):
    first, first_id = reader_with_choices(app, "accept_all", "reject_all")
    second, second_id = reader_with_choices(app, "save")
    assert first_id != second_id
    first_answer, second_answer = history_json(first), history_json(second)
    assert len(first_answer["records"]) == 2 and len(second_answer["records"]) == 1
    mine = {r.hash for r in records(app) if r.consent_id == second_id}
    assert {entry["hash"] for entry in second_answer["records"]} == mine
    assert second_id not in first.get("/consent/history").get_data(as_text=True)
    assert first_id not in second.get("/consent/history").get_data(as_text=True)


def test_an_id_in_the_address_is_ignored(app):
    victim, victim_id = reader_with_choices(app, "accept_all")
    stranger, stranger_id = reader_with_choices(app, "reject_all")
    for path in (f"/consent/history?consent_id={victim_id}", f"/consent/history?id={victim_id}"):
        answer = history_json(stranger, path)
        assert answer["consent_id"] == stranger_id
        assert [entry["action"] for entry in answer["records"]] == ["reject_all"]
    assert history_json(app.test_client(), f"/consent/history?consent_id={victim_id}") == {
        "consent_id": None,
        "records": [],
    }


def test_a_forged_session_naming_another_readers_id_shows_nothing(app_factory, app):
    _, victim_id = reader_with_choices(app, "accept_all")
    forger = app_factory(SECRET_KEY="a-key-the-site-never-had").test_client()
    store_choice(forger, OPTIONAL, consent_id=victim_id)
    forged = forger.get_cookie("gu_session").value
    intruder = app.test_client()
    intruder.set_cookie("gu_session", forged)
    assert history_json(intruder) == {"consent_id": None, "records": []}
    assert victim_id not in intruder.get("/consent/history").get_data(as_text=True)
    assert victim_id not in intruder.get("/consent").get_data(as_text=True)


def test_a_tampered_session_cookie_shows_nothing(app):
    reader, reader_id = reader_with_choices(app, "accept_all")
    value = reader.get_cookie("gu_session").value
    tampered = app.test_client()
    tampered.set_cookie("gu_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert history_json(tampered) == {"consent_id": None, "records": []}


@pytest.mark.parametrize(
    "stale",
    [
        {"made_at": datetime.now(UTC) - timedelta(days=200)},
        {"revision": 99},
    ],
    ids=["expired", "older-revision"],
)
def test_a_stale_choice_gives_no_history(app, stale):
    _, reader_id = reader_with_choices(app, "accept_all")
    returning = app.test_client()
    store_choice(returning, OPTIONAL, consent_id=reader_id, **stale)
    assert history_json(returning) == {"consent_id": None, "records": []}
    page = returning.get("/consent/history").get_data(as_text=True)
    assert reader_id not in page and "holds no current cookie choice" in page


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
@pytest.mark.parametrize("has_choice", [True, False])
def test_history_is_never_stored_by_any_cache(app, accept, has_choice):
    client = app.test_client()
    if has_choice:
        choose(client, "accept_all")
    response = client.get("/consent/history", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == accept
    assert response.headers["Cache-Control"] == "private, no-store"
