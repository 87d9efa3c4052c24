"""Bad input to POST /consent: a clear 400, and nothing stored changes."""

from __future__ import annotations

import pytest

from conftest import choose, csrf_token
from globalupdates.consent.records import ConsentRecord
from globalupdates.extensions import db


def record_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(ConsentRecord.id)))


def stored_choice(client):
    with client.session_transaction() as session:
        return session.get("consent")


@pytest.fixture
def reader_with_choice(app, client):
    choose(client, "save", ("analytics",))
    return stored_choice(client)


def fresh_token(client) -> str:
    return csrf_token(client.get("/consent").get_data(as_text=True))


def assert_nothing_changed(app, client, before):
    assert stored_choice(client) == before
    assert record_count(app) == 1


def test_missing_csrf_token_is_refused(app, client, reader_with_choice):
    response = client.post("/consent", data={"action": "accept_all"})
    assert response.status_code == 400
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert_nothing_changed(app, client, reader_with_choice)


def test_forged_csrf_token_is_refused(app, client, reader_with_choice):
    response = client.post("/consent", data={"csrf_token": "forged", "action": "accept_all"})
    assert response.status_code == 400
    assert_nothing_changed(app, client, reader_with_choice)


def test_a_token_from_another_session_is_refused(app, client, reader_with_choice):
    stranger = app.test_client()
    token = csrf_token(stranger.get("/consent").get_data(as_text=True))
    response = client.post("/consent", data={"csrf_token": token, "action": "accept_all"})
    assert response.status_code == 400
    assert_nothing_changed(app, client, reader_with_choice)


def test_refused_form_keeps_the_readers_ticks_and_a_fresh_token(client, reader_with_choice):
    response = client.post(
        "/consent", data={"action": "save", "functional": "on", "performance": "on"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="functional" name="functional" value="on" checked' in html
    assert 'id="performance" name="performance" value="on" checked' in html
    assert 'id="analytics" name="analytics" value="on" checked' not in html
    retry = client.post(
        "/consent",
        data={"csrf_token": csrf_token(html), "action": "save", "functional": "on"},
    )
    assert retry.status_code == 303


@pytest.mark.parametrize(
    "form",
    [
        {"action": "grant_everything"},
        {"action": ""},
        {},
        {"action": "save", "analytics": "banana"},
        {"action": "save", "analytics": ["on", "on"]},
        {"action": "save", "next": "/" + "a" * 5000},
    ],
)
def test_malformed_choice_is_a_clear_400(app, client, reader_with_choice, form):
    response = client.post("/consent", data={"csrf_token": fresh_token(client), **form})
    assert response.status_code == 400
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert_nothing_changed(app, client, reader_with_choice)


def test_necessary_cannot_be_refused(client):
    choose(client, "save", ("necessary",))
    assert stored_choice(client)["categories"] == ["necessary"]


def test_tampered_session_cookie_counts_as_no_choice(client, reader_with_choice):
    value = client.get_cookie("gu_session").value
    client.set_cookie("gu_session", value[:-3] + "abc")
    html = client.get("/").get_data(as_text=True)
    assert 'id="consent-banner"' in html
    assert "data-category" not in html


def test_a_garbled_stored_choice_counts_as_no_choice(client):
    with client.session_transaction() as session:
        session["consent"] = {"id": "not-a-uuid", "categories": "analytics", "made_at": "x"}
    html = client.get("/").get_data(as_text=True)
    assert 'id="consent-banner"' in html
    assert "data-category" not in html


def test_an_action_sent_twice_is_refused(app, client, reader_with_choice):
    response = client.post(
        "/consent",
        data={"csrf_token": fresh_token(client), "action": ["accept_all", "reject_all"]},
    )
    assert response.status_code == 400
    assert_nothing_changed(app, client, reader_with_choice)
