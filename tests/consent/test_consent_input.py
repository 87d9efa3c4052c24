"""Bad input to POST /consent: a clear 400, and nothing stored changes."""

from __future__ import annotations

import pytest

from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.extensions import db
from tests.support.consent import SAME_ORIGIN, choose


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


def assert_nothing_changed(app, client, before):
    assert stored_choice(client) == before
    assert record_count(app) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        # Sec-Fetch-Site decides when both are sent, whatever the Origin says
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    ],
)
def test_a_cross_site_post_is_refused(app, client, reader_with_choice, headers):
    response = client.post("/consent", data={"action": "accept_all"}, headers=headers)
    assert response.status_code == 403
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert_nothing_changed(app, client, reader_with_choice)


def test_a_cross_site_post_gives_a_first_visitor_nothing(app):
    stranger = app.test_client()
    response = stranger.post(
        "/consent",
        data={"action": "accept_all"},
        headers={"Sec-Fetch-Site": "cross-site", "Accept": "application/json"},
    )
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert stored_choice(stranger) is None
    assert record_count(app) == 0


@pytest.mark.parametrize(
    "headers",
    [
        SAME_ORIGIN,
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://localhost"},
        {},  # no browser sent this: it cannot carry a reader's cookie by forgery
    ],
)
def test_a_post_from_the_site_itself_is_taken(app, client, reader_with_choice, headers):
    response = client.post("/consent", data={"action": "accept_all"}, headers=headers)
    assert response.status_code == 303
    assert stored_choice(client)["categories"] != reader_with_choice["categories"]
    assert record_count(app) == 2


def test_refused_form_keeps_the_readers_ticks(client, reader_with_choice):
    response = client.post(
        "/consent",
        data={"action": "save", "functional": "on", "performance": "on", "next": "/" * 3000},
        headers=SAME_ORIGIN,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="functional" name="functional" value="on" checked' in html
    assert 'id="performance" name="performance" value="on" checked' in html
    assert 'id="analytics" name="analytics" value="on" checked' not in html
    assert "csrf_token" not in html
    retry = client.post(
        "/consent", data={"action": "save", "functional": "on"}, headers=SAME_ORIGIN
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
    response = client.post("/consent", data=form, headers=SAME_ORIGIN)
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
        data={"action": ["accept_all", "reject_all"]},
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 400
    assert_nothing_changed(app, client, reader_with_choice)
