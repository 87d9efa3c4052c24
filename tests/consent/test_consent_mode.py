"""Google Consent Mode v2, when the operator configures a Google tag id."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from globalupdates import create_app
from tests.support.consent import BUILTIN_REGISTRY, GPC, choose, store_choice
from tests.support.html import EXECUTABLE_SCRIPTS, attribute, select
from tests.support.pages import ARTICLE

TAG = "G-TEST12345"
SIGNALS = {"ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"}


@pytest.fixture
def tagged(app_factory):
    return app_factory(GOOGLE_TAG_ID=TAG)


GTAG_CONSENT_CALL = re.compile(r'gtag\("consent", "(default|update)", (\{[^}]*\})\)')


def inline_scripts(html: str) -> list[str]:
    """The text of every script written into the page itself (no ``src``, no other attribute)."""
    return [script.string or "" for script in select(html, "script") if not script.attrs]


def gtag_calls(html: str) -> list[tuple[str, dict]]:
    """Each ``gtag("consent", ...)`` call the page's inline scripts make, with its values."""
    return [
        (kind, json.loads(values))
        for script in inline_scripts(html)
        for kind, values in GTAG_CONSENT_CALL.findall(script)
    ]


def google_tag_position(html: str) -> int:
    return html.find("https://www.googletagmanager.com/gtag/js")


def test_nothing_of_google_without_a_tag_id(client):
    choose(client, "accept_all")
    response = client.get(ARTICLE)
    assert "gtag" not in response.get_data(as_text=True)
    assert "google" not in response.headers["Content-Security-Policy"]


def test_first_visit_declares_all_four_signals_denied_and_loads_no_google_tag(tagged):
    response = tagged.test_client().get(ARTICLE)
    html = response.get_data(as_text=True)
    assert gtag_calls(html) == [("default", dict.fromkeys(SIGNALS, "denied"))]
    assert google_tag_position(html) == -1
    assert "googletagmanager" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("granted", "expected_granted"),
    [
        ({"analytics"}, {"analytics_storage"}),
        ({"advertisement"}, {"ad_storage", "ad_user_data", "ad_personalization"}),
        ({"analytics", "advertisement"}, SIGNALS),
        ({"functional", "performance"}, set()),
    ],
)
def test_the_readers_choice_maps_onto_the_signals(tagged, granted, expected_granted):
    client = tagged.test_client()
    store_choice(client, granted)
    response = client.get(ARTICLE)
    html = response.get_data(as_text=True)
    calls = gtag_calls(html)
    assert calls[0] == ("default", dict.fromkeys(SIGNALS, "denied"))
    assert calls[1][0] == "update"
    assert {k for k, v in calls[1][1].items() if v == "granted"} == expected_granted
    assert set(calls[1][1]) == SIGNALS
    policy = response.headers["Content-Security-Policy"]
    if expected_granted:
        position = google_tag_position(html)
        assert position > html.index('gtag("consent", "default"')
        assert "https://www.googletagmanager.com" in policy
    else:
        assert google_tag_position(html) == -1
        assert "googletagmanager" not in policy


def hash_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("granted", [None, set(), {"analytics"}, {"advertisement", "functional"}])
def test_the_inline_consent_mode_script_runs_by_its_hash_alone(tagged, granted):
    client = tagged.test_client()
    if granted is not None:
        store_choice(client, granted)
    response = client.get("/")
    html = response.get_data(as_text=True)
    [inline] = inline_scripts(html)
    script_src = next(
        part.split()[1:]
        for part in response.headers["Content-Security-Policy"].split(";")
        if part.split()[0] == "script-src"
    )
    assert [source for source in script_src if source.startswith("'sha256-")] == [
        hash_source(inline)
    ]
    assert not any(source.startswith("'nonce-") for source in script_src)
    assert "'unsafe-inline'" not in script_src and "'self'" not in script_src
    tags = [
        tag
        for tag in select(html, EXECUTABLE_SCRIPTS)
        if not tag.has_attr("data-category")
        and not (attribute(tag, "src") or "").startswith("/static/js/consent-")
    ]
    assert len(tags) == (2 if granted and granted & {"analytics", "advertisement"} else 1)
    assert not any(tag.has_attr("nonce") for tag in select(html, "script"))


def test_no_hash_without_a_tag_id(client):
    choose(client, "accept_all")
    response = client.get("/")
    assert "'sha256-" not in response.headers["Content-Security-Policy"]
    assert inline_scripts(response.get_data(as_text=True)) == []


def test_the_default_comes_before_any_other_script(tagged):
    client = tagged.test_client()
    store_choice(client, {"analytics", "advertisement", "functional"})
    html = client.get(ARTICLE).get_data(as_text=True)
    first_script = select(html, "script")[0]
    assert 'gtag("consent", "default"' in (first_script.string or "")


def test_a_choice_updates_the_signals_on_the_next_page(tagged):
    client = tagged.test_client()
    response = choose(client, "accept_all", headers=GPC, page=ARTICLE, next_path=ARTICLE)
    html = client.get(response.headers["Location"], headers=GPC).get_data(as_text=True)
    update = dict(gtag_calls(html))["update"]
    assert update["analytics_storage"] == "granted"
    assert update["ad_storage"] == "denied"


def test_a_malformed_tag_id_stops_the_site_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="GOOGLE_TAG_ID"):
        create_app(
            {
                "SECRET_KEY": "k",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/db.sqlite3",
                "GOOGLE_TAG_ID": "G-1');alert(1)//",
            }
        )


GOOGLE_ANALYTICS_SERVICE = """
[[services]]
key = "google_analytics"
name = "Google Analytics"
category = "analytics"
google = true
description = "Measures reading for the newsroom."
established = "United States"
  [services.de]
  description = "Misst das Lesen für die Redaktion."
  established = "Vereinigte Staaten"
  [services.fr]
  description = "Mesure la lecture pour la rédaction."
  established = "États-Unis"
  [[services.scripts]]
  src = "https://www.googletagmanager.com/gtag/js"
"""


@pytest.fixture
def tagged_with_a_google_service(app_factory, tmp_path):
    path = tmp_path / "registry.toml"
    path.write_text(
        BUILTIN_REGISTRY.read_text(encoding="utf-8") + GOOGLE_ANALYTICS_SERVICE, encoding="utf-8"
    )
    return app_factory(GOOGLE_TAG_ID=TAG, CONSENT_REGISTRY=str(path))


@pytest.mark.parametrize(
    ("services", "analytics_storage"),
    [(("google_analytics",), "granted"), (("tallyhouse",), "denied"), ((), "granted")],
)
def test_analytics_counts_for_google_only_while_its_google_service_is_granted(
    tagged_with_a_google_service, services, analytics_storage
):
    """Analytics granted with its Google service refused denies analytics_storage; a category
    ticked alone grants all of its services, the Google one among them."""
    client = tagged_with_a_google_service.test_client()
    choose(client, "save", ("analytics",), services=services)
    update = dict(gtag_calls(client.get(ARTICLE).get_data(as_text=True)))["update"]
    assert update["analytics_storage"] == analytics_storage
    assert update["ad_storage"] == "denied"
