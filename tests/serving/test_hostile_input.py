"""Property-based tests: malformed, oversized and hostile input at every endpoint.

Whatever arrives, the site never answers 500, refuses bad input with a clear 4xx, and
leaves the reader's stored choice and the consent records exactly as they were.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from urllib.parse import urlsplit

import pytest
from flask.sessions import SecureCookieSessionInterface
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.consent.web.preferences_form import ACTIONS, CHECKED_VALUES
from globalupdates.extensions import db
from tests.support.consent import OPTIONAL, SAME_ORIGIN, choose, stored_choice
from tests.support.html import EXECUTABLE_SCRIPTS, attribute, select
from tests.support.pages import ARTICLE

# The one script every page runs, under its content-hashed name.
CONSENT_SCRIPT = re.compile(r"/static/js/consent-[0-9a-f]{32}\.js")

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GET_PATHS = [
    "/",
    ARTICLE,
    "/consent",
    "/cookie-policy",
    "/.well-known/gpc.json",
    "/healthz",
    "/features/house-ad",
    "/static/css/site.css",
]
BEACONS = ["/features/pageview", "/features/timing", "/features/text-size"]
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
anything = st.text(max_size=300) | st.text(max_size=5000).map(lambda t: t * 3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | anything,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(printable, inner, max_size=5),
    max_leaves=20,
)


class Reader:
    """A reader who has made a choice, and everything that must not change for them."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        choose(self.client, "save", OPTIONAL)
        self.choice = stored_choice(self.client)
        self.proof = self.records()

    def records(self) -> tuple[int, str | None]:
        with self.app.app_context():
            count = db.session.scalar(db.select(db.func.count(ConsentRecord.id)))
            last = db.session.scalar(
                db.select(ConsentRecord.hash).order_by(ConsentRecord.id.desc()).limit(1)
            )
            db.session.remove()
        return count, last

    def assert_untouched(self) -> None:
        assert stored_choice(self.client) == self.choice
        assert self.records() == self.proof


def assert_clear_refusal(response) -> None:
    assert 400 <= response.status_code < 500, response.status_code
    if response.mimetype == "application/json":
        assert response.get_json()["error"]
    else:
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and len(text) > 100


@pytest.fixture
def reader(app_factory):
    from globalupdates.articles.importer import import_paths
    from tests.support.apps import CONTENT_DIR

    app = app_factory(RATELIMIT_ENABLED=False)
    with app.app_context():
        import_paths([CONTENT_DIR])
    return Reader(app)


def is_valid_choice(form: dict[str, list[str]]) -> bool:
    actions = form.get("action", [])
    if len(actions) != 1 or actions[0] not in ACTIONS:
        return False
    return all(
        len(form.get(key, [])) <= 1 and all(v.strip().lower() in CHECKED_VALUES for v in form[key])
        for key in OPTIONAL
        if key in form
    )


choice_forms = st.dictionaries(
    st.sampled_from(["action", "next", *OPTIONAL, "necessary"]) | printable,
    st.lists(anything | st.sampled_from([*ACTIONS, "on", "off", "1"]), min_size=1, max_size=3),
    max_size=8,
).filter(lambda form: not is_valid_choice(form))


@SETTINGS
@given(form=choice_forms, fetch_site=st.sampled_from([None, "same-origin", "none"]))
def test_hostile_choice_forms(reader, form, fetch_site):
    """Sent from the site itself (or by no browser), so only the form's content refuses it."""
    data = [(key, value) for key, values in form.items() for value in values]
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    response = reader.client.post("/consent", data=MultiDict(data), headers=headers)
    assert_clear_refusal(response)
    reader.assert_untouched()


def names_this_site(origin: str) -> bool:
    try:
        return urlsplit(origin).netloc.lower() == "localhost"
    except ValueError:
        return False


cross_site_headers = st.fixed_dictionaries(
    {"Sec-Fetch-Site": printable.filter(lambda value: value not in ("same-origin", "none"))}
) | st.fixed_dictionaries(
    {
        "Origin": (printable | printable.map(lambda host: f"https://{host}")).filter(
            lambda origin: not names_this_site(origin)
        )
    }
)


@SETTINGS
@given(headers=cross_site_headers, action=st.sampled_from(ACTIONS))
def test_cross_site_choices_change_nothing(reader, headers, action):
    """A well-formed choice that comes from anywhere but the site itself is refused."""
    response = reader.client.post("/consent", data={"action": action}, headers=headers)
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert_clear_refusal(response)
    reader.assert_untouched()


def names_this_origin(referer: str) -> bool:
    """Whether a ``Referer`` names http://localhost, the test client's own origin."""
    try:
        parts = urlsplit(referer.strip())
        return (
            parts.scheme.lower() == "http"
            and parts.hostname == "localhost"
            and parts.port in (None, 80)
        )
    except ValueError:
        return False


latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)
foreign_referers = (
    printable
    | latin1
    | st.sampled_from(
        ["http://", "https://", "HTTP://localhost:", "//localhost/", "http://["]
    ).flatmap(lambda start: printable.map(lambda rest: start + rest))
    | st.from_regex(r"\Ahttps?://[a-z0-9.-]{1,40}(:[0-9]{1,6})?(/[ -~]{0,80})?\Z")
).filter(lambda referer: referer.strip() != "" and not names_this_origin(referer))


@SETTINGS
@given(referer=foreign_referers, action=st.sampled_from(ACTIONS))
def test_a_choice_with_only_a_foreign_or_unreadable_referer_changes_nothing(
    reader, referer, action
):
    """A browser without Fetch Metadata names the page it posted from; anything but this
    site's own origin there is refused, and no value fails."""
    response = reader.client.post("/consent", data={"action": action}, headers={"Referer": referer})
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert_clear_refusal(response)
    reader.assert_untouched()


@pytest.mark.parametrize("origin", ["http://[", "https://[::1", "http://]evil.example["])
def test_a_malformed_origin_is_refused_and_never_fails(reader, origin):
    response = reader.client.post(
        "/consent", data={"action": "reject_all"}, headers={"Origin": origin}
    )
    assert response.status_code == 403
    reader.assert_untouched()


@SETTINGS
@given(
    path=st.sampled_from(BEACONS),
    body=json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=3000),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded"]
    ),
)
def test_hostile_beacons(reader, path, body, content_type):
    response = reader.client.post(path, data=body, content_type=content_type, headers=SAME_ORIGIN)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.get_json()["error"]
    reader.assert_untouched()


@SETTINGS
@given(
    path=st.sampled_from(GET_PATHS),
    query=st.dictionaries(printable, anything, max_size=4) | st.just({}),
    next_value=anything,
    gpc=printable.filter(lambda value: value != "1"),  # a real GPC signal may revise a choice
)
def test_hostile_query_strings_and_next_values(reader, path, query, next_value, gpc):
    query = {**query, "next": next_value}
    response = reader.client.get(
        f"{path}?{urllib.parse.urlencode(query)}", headers={"Sec-GPC": gpc}
    )
    response.close()
    assert response.status_code < 500
    if response.status_code == 200 and response.mimetype == "text/html":
        # Canonical and feed links name the site itself absolutely; only those may remain.
        html = response.get_data(as_text=True).replace('"http://localhost/', '"/')
        for link in ('href="//', 'href="http', 'value="//', 'value="http'):
            assert link not in html.replace('href="https://', "")
    reader.assert_untouched()


@SETTINGS
@given(
    path=printable.map(lambda p: "/" + p.lstrip("/")),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
)
def test_arbitrary_paths_and_methods_never_fail(reader, path, method):
    response = reader.client.open(path, method=method, headers=SAME_ORIGIN)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_clear_refusal(response)
    response.close()
    reader.assert_untouched()


@SETTINGS
@given(cookie=printable | anything, path=st.sampled_from(GET_PATHS))
def test_garbage_session_cookies_count_as_no_choice(reader, cookie, path):
    client = reader.app.test_client()
    client.set_cookie("gu_session", cookie)
    response = client.get(path)
    response.close()
    assert response.status_code < 500
    if path == ARTICLE:
        assert 'id="consent-banner"' in response.get_data(as_text=True)
    reader.assert_untouched()


@SETTINGS
@given(
    choice=st.dictionaries(printable, json_values, max_size=6)
    | st.fixed_dictionaries(
        {
            "id": printable,
            "categories": json_values,
            "made_at": json_values,
            "revision": json_values,
        }
    ),
    secret=st.sampled_from(["another-site's-secret", "test-secret-key-not-for-production"]),
)
def test_tampered_or_foreign_sessions_never_grant_and_never_fail(reader, choice, secret):
    """A session signed with another key is ignored; one signed with ours (as if the key had
    leaked) still cannot hold anything but a well-formed choice."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(reader.app)
    serializer.secret_keys = [secret.encode()]
    client = reader.app.test_client()
    client.set_cookie("gu_session", serializer.dumps({"consent": choice}))
    response = client.get(ARTICLE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    scripts = [
        tag
        for tag in select(html, EXECUTABLE_SCRIPTS)
        if not CONSENT_SCRIPT.fullmatch(attribute(tag, "src") or "")
    ]
    assert scripts == [] or secret != "another-site's-secret"
    reader.assert_untouched()


@SETTINGS
@given(
    body=json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=20000),
    content_type=st.sampled_from(
        ["application/csp-report", "application/reports+json", "text/html"]
    ),
)
def test_hostile_csp_reports(reader, body, content_type):
    response = reader.client.post("/csp-report", data=body, content_type=content_type)
    assert response.status_code < 500
    if response.status_code != 204:
        assert_clear_refusal(response)
    reader.assert_untouched()


def test_an_oversized_form_is_refused_with_413(reader):
    response = reader.client.post(
        "/consent", data={"action": "save", "next": "x" * 100_000}, headers=SAME_ORIGIN
    )
    assert response.status_code == 413
    reader.assert_untouched()
