"""POST /consent for the consent script: the same form, answered in JSON when JSON is preferred."""

from __future__ import annotations

import pytest

from globalupdates.consent.model.registry_file import BUILTIN_REGISTRY
from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.extensions import db
from tests.support.consent import SAME_ORIGIN, choose, static_path

JSON = {"Accept": "application/json"}
TALLY_SCRIPT = "https://cdn.tallyhouse.example/tally.js"
OPTIONAL = ["functional", "analytics", "performance", "advertisement"]
FEATURE_FILES = {
    "functional": "features/textsize.js",
    "analytics": "features/pageviews.js",
    "performance": "features/timing.js",
    "advertisement": "features/housead.js",
}
ANSWER_KEYS = {
    "granted",
    "withdrawn",
    "services",
    "withdrawn_services",
    "reload",
    "consent_id",
    "gpc",
    "scripts",
}


@pytest.fixture
def feature_scripts(app) -> dict[str, str]:
    """Each category's script as pages link it: under its fingerprinted name."""
    return {key: static_path(app, name) for key, name in FEATURE_FILES.items()}


def record_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(ConsentRecord.id)))


def send_choice(client, action: str, categories=(), headers=None):
    """The consent script's post: the form's fields, from the page's own origin."""
    form = {"action": action, **{key: "on" for key in categories}}
    return client.post("/consent", data=form, headers={**JSON, **SAME_ORIGIN, **(headers or {})})


def test_accept_all_answers_the_grant_and_asks_for_a_page_that_may_run_its_scripts(
    client, feature_scripts
):
    client.get("/consent")
    response = send_choice(client, "accept_all")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-CSP-Nonce" not in response.headers
    answer = response.get_json()
    assert set(answer) == ANSWER_KEYS
    assert answer["granted"] == ["necessary", *OPTIONAL]
    assert answer["withdrawn"] == []
    # the page's policy names only the scripts granted when it was served: reload
    assert answer["reload"] is True
    assert len(answer["consent_id"]) == 36
    assert answer["scripts"] == [
        *({"src": feature_scripts[key], "category": key, "service": None} for key in OPTIONAL),
        {"src": TALLY_SCRIPT, "category": "analytics", "service": "tallyhouse"},
    ]
    assert answer["services"] == ["vidmoor", "clipwell", "tallyhouse"]
    with client.session_transaction() as session:
        assert session["consent"]["id"] == answer["consent_id"]


def test_a_custom_choice_answers_only_its_categories_scripts(client, feature_scripts):
    answer = send_choice(client, "save", ["analytics"]).get_json()
    assert answer["granted"] == ["necessary", "analytics"]
    assert answer["scripts"] == [
        {"src": feature_scripts["analytics"], "category": "analytics", "service": None},
        {"src": TALLY_SCRIPT, "category": "analytics", "service": "tallyhouse"},
    ]
    assert answer["reload"] is True


def test_reject_all_answers_no_script_and_no_reload(client):
    answer = send_choice(client, "reject_all").get_json()
    assert answer["granted"] == ["necessary"]
    assert answer["scripts"] == []
    assert answer["reload"] is False


def test_a_choice_that_grants_nothing_new_needs_no_reload(client, feature_scripts):
    assert send_choice(client, "save", ["functional"]).get_json()["reload"] is True
    again = send_choice(client, "save", ["functional"]).get_json()
    assert again["reload"] is False
    assert again["withdrawn"] == []
    assert again["scripts"] == [
        {"src": feature_scripts["functional"], "category": "functional", "service": None}
    ]
    more = send_choice(client, "save", ["functional", "performance"]).get_json()
    assert more["reload"] is True


def test_a_withdrawal_is_named_and_its_cookie_expired_in_the_same_answer(client):
    send_choice(client, "save", ["analytics", "functional"])
    client.set_cookie("gu_reader", "a" * 32)
    response = send_choice(client, "save", ["functional"])
    answer = response.get_json()
    assert answer["withdrawn"] == ["analytics"]
    assert answer["reload"] is True
    assert answer["granted"] == ["necessary", "functional"]
    expired = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("gu_reader=")]
    assert len(expired) == 1 and "Max-Age=0" in expired[0]


def test_no_script_in_the_answer_carries_a_nonce(client):
    response = send_choice(
        client, "accept_all", headers={"X-CSP-Nonce": "AbCdEfGhIjKlMnOpQrStUvWx"}
    )
    assert "X-CSP-Nonce" not in response.headers
    scripts = response.get_json()["scripts"]
    assert scripts and all(set(script) == {"src", "category", "service"} for script in scripts)
    assert "nonce" not in response.get_data(as_text=True)


def test_the_scripts_gpc_report_counts_like_the_header(app, client):
    answer = send_choice(client, "accept_all", headers={"X-GPC": "1"}).get_json()
    assert "advertisement" not in answer["granted"]
    assert answer["gpc"] is True
    with app.app_context():
        record = db.session.scalars(db.select(ConsentRecord)).one()
        assert record.gpc is True


@pytest.mark.parametrize("value", ["0", "true", "", "1 "])
def test_only_the_exact_gpc_value_counts(client, value):
    answer = send_choice(client, "accept_all", headers={"X-GPC": value}).get_json()
    assert "advertisement" in answer["granted"]
    assert answer["gpc"] is False


def test_a_browser_form_post_still_gets_the_redirect(client):
    response = choose(client, "accept_all", next_path="/cookie-policy")
    assert response.status_code == 303
    assert response.headers["Location"] == "/cookie-policy"


def test_a_malformed_json_choice_is_a_clear_400_and_stores_nothing(app, client):
    response = send_choice(client, "grant_everything_forever")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Nothing was changed: the choice sent could not be understood."
    }
    assert record_count(app) == 0
    with client.session_transaction() as session:
        assert "consent" not in session


@pytest.mark.parametrize(
    "origin", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}]
)
def test_a_cross_site_json_choice_is_a_clear_403_and_stores_nothing(app, client, origin):
    client.get("/")
    response = client.post("/consent", data={"action": "accept_all"}, headers={**JSON, **origin})
    assert response.status_code == 403
    assert response.mimetype == "application/json"
    assert "Nothing was changed" in response.get_json()["error"]
    assert "Set-Cookie" not in response.headers
    assert record_count(app) == 0
    with client.session_transaction() as session:
        assert "consent" not in session


def registry_with_a_third_party_analytics_script(tmp_path) -> str:
    marker = '  static = "features/pageviews.js"\n'
    extra = '\n  [[categories.scripts]]\n  src = "https://stats.example.net/tag.js"\n'
    path = tmp_path / "registry.toml"
    path.write_text(BUILTIN_REGISTRY.read_text().replace(marker, marker + extra, 1))
    return str(path)


def test_a_newly_granted_script_from_another_site_asks_for_a_new_page(app_factory, tmp_path):
    app = app_factory(CONSENT_REGISTRY=registry_with_a_third_party_analytics_script(tmp_path))
    client = app.test_client()
    send_choice(client, "save", ["functional"])
    answer = send_choice(client, "save", ["functional", "analytics"]).get_json()
    assert answer["reload"] is True
    assert answer["withdrawn"] == []
    assert "https://stats.example.net/tag.js" in [script["src"] for script in answer["scripts"]]
    again = send_choice(client, "save", ["functional", "analytics"]).get_json()
    assert again["reload"] is False


@pytest.mark.parametrize("field", ["action", "next"])
def test_a_field_sent_twice_is_refused_and_stores_nothing(app, client, field):
    form = {"action": "accept_all", "next": "/"}
    form[field] = [form[field], ""]
    response = client.post("/consent", data=form, headers={**JSON, **SAME_ORIGIN})
    assert response.status_code == 400
    assert record_count(app) == 0
