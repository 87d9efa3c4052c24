"""A choice counts only under the registry revision and lifetime it was made for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest

from globalupdates.consent.model.variant_cookie import VARIANT_COOKIE
from tests.support.consent import (
    BUILTIN_REVISION,
    OPTIONAL,
    SESSION_COOKIE,
    choose,
    gated_categories,
    operator_registry,
    store_choice,
    stored_choice,
)
from tests.support.pages import ARTICLE


def shows_banner(client, path: str = ARTICLE) -> bool:
    return 'id="consent-banner"' in client.get(path).get_data(as_text=True)


def test_operator_registry_from_the_environment_raises_the_revision(
    app_factory, tmp_path, monkeypatch
):
    raised_twice = operator_registry(tmp_path, revision=BUILTIN_REVISION + 2)
    monkeypatch.setenv("FLASK_CONSENT_REGISTRY", str(raised_twice))
    app = app_factory()
    assert app.extensions["consent"].registry.revision == BUILTIN_REVISION + 2
    client = app.test_client()
    store_choice(client, OPTIONAL, revision=BUILTIN_REVISION + 1)
    html = client.get(ARTICLE).get_data(as_text=True)
    assert 'id="consent-banner"' in html and gated_categories(html) == set()
    choose(client, "accept_all")
    assert stored_choice(client)["revision"] == BUILTIN_REVISION + 2
    assert not shows_banner(client)
    assert gated_categories(client.get(ARTICLE).get_data(as_text=True)) == set(OPTIONAL)


def test_choice_under_the_current_revision_counts(app_factory, tmp_path):
    raised = operator_registry(tmp_path, revision=BUILTIN_REVISION + 1)
    app = app_factory(CONSENT_REGISTRY=str(raised))
    client = app.test_client()
    store_choice(client, OPTIONAL, revision=BUILTIN_REVISION + 1)
    assert not shows_banner(client)


@pytest.mark.parametrize(
    ("age", "counts"),
    [
        (timedelta(days=181, hours=23), True),
        (timedelta(days=182, minutes=1), False),
        (timedelta(days=400), False),
        (-timedelta(days=2), False),  # made "in the future": forged or a broken clock
    ],
)
def test_choice_expires_after_the_lifetime(client, age, counts):
    store_choice(client, OPTIONAL, made_at=datetime.now(UTC) - age)
    html = client.get(ARTICLE).get_data(as_text=True)
    assert ('id="consent-banner"' not in html) is counts
    assert (gated_categories(html) == set(OPTIONAL)) is counts


def test_configured_lifetime_is_used_for_expiry_and_for_the_choice_cookies(app_factory):
    app = app_factory(CONSENT_LIFETIME_DAYS=30)
    assert app.permanent_session_lifetime == timedelta(days=30)
    client = app.test_client()
    store_choice(client, OPTIONAL, made_at=datetime.now(UTC) - timedelta(days=31))
    assert shows_banner(client)
    response = choose(client, "reject_all")
    for name in (SESSION_COOKIE, VARIANT_COOKIE):
        assert cookie_expiry(response, name) <= datetime.now(UTC) + timedelta(days=30, minutes=1)


def cookie_expiry(response, name: str) -> datetime:
    """The ``Expires`` the response gives cookie ``name``, in UTC."""
    [set_cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    expires = SimpleCookie(set_cookie)[name]["expires"]
    return parsedate_to_datetime(expires).astimezone(UTC)


def test_the_choice_cookies_never_outlive_182_days_by_default(client):
    response = choose(client, "accept_all")
    for name in (SESSION_COOKIE, VARIANT_COOKIE):
        assert cookie_expiry(response, name) <= datetime.now(UTC) + timedelta(days=182, minutes=1)


def test_expired_choice_stops_gated_scripts_and_their_endpoints(client):
    store_choice(client, OPTIONAL, made_at=datetime.now(UTC) - timedelta(days=200))
    assert gated_categories(client.get(ARTICLE).get_data(as_text=True)) == set()
    assert client.get("/features/house-ad").status_code == 403


def test_a_cookie_replayed_after_a_withdrawal_counts_until_its_own_lifetime_ends(client):
    """The documented limit (docs/operations.md, "A replayed session cookie"): a signed cookie
    cannot be revoked, so a copy kept from before a withdrawal grants again when sent back,
    and stops counting only where any choice does: at its lifetime or a new revision."""
    choose(client, "accept_all")
    kept = client.get_cookie(SESSION_COOKIE).value
    choose(client, "reject_all")
    assert gated_categories(client.get(ARTICLE).get_data(as_text=True)) == set()
    client.set_cookie(SESSION_COOKIE, kept)
    assert gated_categories(client.get(ARTICLE).get_data(as_text=True)) == set(OPTIONAL)
    store_choice(client, OPTIONAL, made_at=datetime.now(UTC) - timedelta(days=182, minutes=1))
    assert gated_categories(client.get(ARTICLE).get_data(as_text=True)) == set()
