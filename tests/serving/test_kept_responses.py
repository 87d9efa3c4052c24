"""The kept responses in front of Flask serve every returning reader, whoever the worker has
seen, from one check of the session cookie; they never serve what the verified cookie does not
grant; and they, and the page cache behind them, stay within their bounds in bytes.
"""

from __future__ import annotations

import random
import time

import pytest
from flask import request_started

from globalupdates.cookies import occurrences, request_cookies
from globalupdates.keptresponses import KeptResponses, is_keepable
from tests.support.articles import import_articles
from tests.support.consent import GPC, OPTIONAL, choose, gated_categories, records
from tests.support.pages import ARTICLE, HTML_PAGES, LOVE_VALLEY, NACHTZUG

ALL = set(OPTIONAL)


@pytest.fixture
def production_app(app_factory, tmp_path):
    """The demo site keeping pages as production does, with extra settings."""

    def make(**settings):
        app = app_factory(**settings)
        from globalupdates.articles.importer import import_paths
        from tests.support.apps import CONTENT_DIR

        with app.app_context():
            import_paths([CONTENT_DIR])
        return app

    return make


def flask_dispatches(app) -> list[str]:
    """The paths Flask itself handled from now on (the kept responses answer before it)."""
    seen: list[str] = []

    def count(sender, **extra):
        from flask import request

        seen.append(request.path)

    request_started.connect(count, app, weak=False)
    return seen


def cookies_after(app, action: str, categories: tuple[str, ...] = (), **headers) -> str:
    """The Cookie header of a new reader who chose: the session and the variant cookie."""
    client = app.test_client()
    assert choose(client, action, categories, headers=headers).status_code == 303
    return "; ".join(
        f"{name}={client.get_cookie(name).value}" for name in ("gu_session", "gu_variant")
    )


def page(app, path: str, cookie: str | None = None, **headers: str):
    client = app.test_client(use_cookies=False)
    if cookie:
        headers["Cookie"] = cookie
    return client.get(path, headers=headers)


def test_a_reader_this_worker_never_saw_is_served_without_flask(production_app):
    app = production_app()
    first, second = cookies_after(app, "accept_all"), cookies_after(app, "accept_all")
    assert gated_categories(page(app, ARTICLE, first).get_data(as_text=True)) == ALL
    handled = flask_dispatches(app)
    answer = page(app, ARTICLE, second)
    assert handled == [], "a returning reader's page went through Flask"
    assert gated_categories(answer.get_data(as_text=True)) == ALL
    assert answer.headers["Cache-Control"] == "private, no-cache"


def test_a_cookie_that_is_tampered_with_or_expired_grants_nothing(production_app):
    app = production_app(PERMANENT_SESSION_LIFETIME=2)
    accepted = cookies_after(app, "accept_all")
    assert gated_categories(page(app, ARTICLE, accepted).get_data(as_text=True)) == ALL
    session_value = accepted.split(";")[0].split("=", 1)[1]
    tampered = accepted.replace(session_value, session_value[:-2] + "xx")
    for cookie in (tampered, tampered):
        html = page(app, ARTICLE, cookie).get_data(as_text=True)
        assert gated_categories(html) == set() and 'id="consent-banner"' in html
    time.sleep(3)
    for _ in range(2):
        html = page(app, ARTICLE, accepted).get_data(as_text=True)
        assert gated_categories(html) == set() and 'id="consent-banner"' in html


def test_a_request_gpc_would_revise_always_reaches_flask_and_is_recorded_once(production_app):
    app = production_app()
    accepted = cookies_after(app, "accept_all")
    page(app, ARTICLE, accepted)
    handled = flask_dispatches(app)
    for _ in range(3):
        answer = page(app, ARTICLE, accepted, **GPC)
        assert gated_categories(answer.get_data(as_text=True)) == ALL - {"advertisement"}
        assert any(c.startswith("gu_session=") for c in answer.headers.getlist("Set-Cookie"))
    assert handled == [ARTICLE] * 3
    assert [record.action for record in records(app)].count("gpc_opt_out") == 1


def test_a_missing_or_wrong_variant_cookie_is_set_right_by_flask(production_app):
    app = production_app()
    accepted = cookies_after(app, "accept_all")
    session_only = accepted.split(";")[0]
    wrong = f"{session_only}; gu_variant=1.0.0000"
    expected = accepted.split("; ")[1]
    page(app, ARTICLE, accepted)
    handled = flask_dispatches(app)
    for cookie in (session_only, wrong):
        answer = page(app, ARTICLE, cookie)
        assert any(c.startswith(expected + ";") for c in answer.headers.getlist("Set-Cookie"))
        assert gated_categories(answer.get_data(as_text=True)) == ALL
    assert handled == [ARTICLE, ARTICLE]


def test_flask_and_the_layer_in_front_read_one_parse_of_the_cookie_header(app):
    header = "gu_session=first; GU_Session=other; x=1, gu_session=hidden"
    with app.test_request_context(ARTICLE, headers={"Cookie": header}) as context:
        from flask import request

        assert request.cookies is request_cookies(context.request.environ)
        assert request.cookies.get("gu_session") == "first"
        assert occurrences(request.environ, "gu_session") == 3
        assert occurrences(request.environ, "x") == 1


def kept_layer(app) -> KeptResponses:
    """The kept responses, under the layers that wrap them (the request ids')."""
    layer = app.wsgi_app
    while not isinstance(layer, KeptResponses):
        layer = layer.wsgi_app
    return layer


def test_a_huge_article_under_many_query_strings_stays_within_the_bounds(production_app, tmp_path):
    """A 2 MB story asked for under 24 query strings: both stores keep to their bytes."""
    app = production_app(
        KEPT_RESPONSE_BYTES=1_000_000, CACHE_MAX_BYTES=600_000, ARTICLE_MAX_BYTES=3_000_000
    )
    words = random.Random(7).choices(["tide", "lagoon", "turbine", "harbour", "grid"], k=350_000)
    body = "\n\n".join(" ".join(words[i : i + 70]) for i in range(0, len(words), 70))
    import_articles(app, tmp_path / "huge", ("huge-story", {"headline": "Huge", "body": body}))
    store = app.extensions["cache"][next(iter(app.extensions["cache"]))]
    layer = kept_layer(app)
    for number in range(24):
        answer = page(app, f"/articles/huge-story?q={number}", Accept_Encoding="gzip")
        assert answer.status_code == 200
        assert layer.kept.currsize <= 1_000_000
        assert store.bytes_used <= 600_000
    assert layer.kept.currsize > 0 and store.bytes_used > 0, "nothing was kept at all"
    small = page(app, ARTICLE)
    assert small.status_code == 200 and layer.kept.currsize <= 1_000_000


def test_the_default_test_app_and_client_are_served_as_production_serves(app, client):
    """Every test's ``client`` goes through the layers production runs: the kept responses in
    front of Flask (``app.wsgi_app``, which the test client calls), the page cache, and the
    content version read every ``CONTENT_CHECK_SECONDS`` as configured in production."""
    from globalupdates.config import Defaults

    assert app.config["CONTENT_CHECK_SECONDS"] == Defaults.CONTENT_CHECK_SECONDS
    assert app.config["KEPT_RESPONSE_SECONDS"] == Defaults.KEPT_RESPONSE_SECONDS
    layer = kept_layer(app)
    first = client.get(ARTICLE)
    handled = flask_dispatches(app)
    again = client.get(ARTICLE)
    assert handled == [], "the test client's repeated request went through Flask"
    assert again.status_code == first.status_code == 200 and again.data == first.data
    assert layer.kept.currsize > 0


READER_STATES = {
    "first visit": ((), {}),
    "first visit with GPC": ((), GPC),
    "accepted all": (("accept_all", ()), {}),
    "rejected all": (("reject_all", ()), {}),
    "analytics only": (("save", ("analytics",)), {}),
    "accepted all in German": (("accept_all", ()), {"Accept-Language": "de"}),
}
PAGES_OF_EVERY_KIND = (*HTML_PAGES, NACHTZUG, LOVE_VALLEY, "/de/", "/fr/consent", "/?page=2")


def without_date(response) -> tuple:
    """The response less what each answer has of its own: its date and its request id."""
    headers = sorted(
        (name, value)
        for name, value in response.headers.items()
        if name not in ("Date", "X-Request-ID")
    )
    return response.status_code, headers, response.data


@pytest.mark.parametrize("state", READER_STATES)
def test_a_page_answered_again_is_the_page_flask_gave_or_goes_to_flask(production_app, state):
    """Whatever the reader chose and whichever page: a repeated request is answered before
    Flask with Flask's very answer (its policy, its scripts, its headers), unless that answer
    set a cookie or may not be kept, and then it goes to Flask again."""
    app = production_app()
    choice, headers = READER_STATES[state]
    cookie = cookies_after(app, choice[0], choice[1], **headers) if choice else None
    for path in PAGES_OF_EVERY_KIND:
        first = page(app, path, cookie, **headers)
        handled = flask_dispatches(app)
        again = page(app, path, cookie, **headers)
        keepable = is_keepable(f"{first.status_code} x", list(first.headers.items()))
        if keepable:
            assert handled == [], f"{path} went through Flask again"
            assert without_date(again) == without_date(first), path
        else:
            assert handled == [path.partition("?")[0]], f"{path} was answered before Flask"
