"""Pages the same for every reader in the same state: no cookie before a choice, identical
bytes, caching a proxy can use, a policy of exact script URLs, and edits that still arrive."""

from __future__ import annotations

import gzip
import itertools
import time

import pytest
from flask import request

from globalupdates.articles.importer import import_paths
from globalupdates.assets import static_url
from globalupdates.consent.web.embed_providers import allow_provider_once
from globalupdates.pagecache import cached_page
from tests.support.apps import CONTENT_DIR
from tests.support.articles import import_articles
from tests.support.consent import (
    FIRST_VISIT_CACHE_CONTROL,
    GPC,
    OPTIONAL,
    choose,
    in_edition,
    records,
    set_cookie_names,
    store_choice,
)
from tests.support.html import attributes, select
from tests.support.pages import ARTICLE, MORVELLE_STATION, NACHTZUG

PAGES = (
    "/",
    ARTICLE,
    "/sections/world",
    "/search?q=lagoon",
    "/cookie-policy",
    "/consent",
    "/feed.atom",
    "/sitemap.xml",
    "/.well-known/gpc.json",
    "/healthz",
    "/articles/no-such-story",
)
FEATURE_SCRIPTS = {
    "functional": "features/textsize.js",
    "analytics": "features/pageviews.js",
    "performance": "features/timing.js",
    "advertisement": "features/housead.js",
}
STATES = [
    frozenset(granted)
    for size in range(len(OPTIONAL) + 1)
    for granted in itertools.combinations(OPTIONAL, size)
]


def reader_who_chose(app, action: str, categories: tuple[str, ...] = ()):
    client = app.test_client()
    assert choose(client, action, categories).status_code == 303
    return client


@pytest.mark.parametrize("path", PAGES)
def test_a_first_visit_sets_no_cookie(client, path):
    response = client.get(path, headers=GPC if "gpc" in path else {})
    assert response.status_code == (404 if "no-such" in path else 200)
    assert "Set-Cookie" not in response.headers


def test_two_first_visits_get_the_same_bytes(app):
    for path in ("/", ARTICLE, "/sections/world", "/consent", "/cookie-policy"):
        first = app.test_client().get(path).data
        assert app.test_client().get(path).data == first, path


@pytest.mark.parametrize(
    ("action", "categories"),
    [("accept_all", ()), ("reject_all", ()), ("save", ("analytics", "functional"))],
)
def test_two_readers_with_the_same_choice_get_the_same_bytes(app, action, categories):
    one = reader_who_chose(app, action, categories)
    other = reader_who_chose(app, action, categories)
    for path in ("/", ARTICLE, "/sections/world", "/cookie-policy"):
        assert one.get(path).data == other.get(path).data, path


def test_no_page_holds_a_consent_id_a_token_or_a_nonce(app):
    reader = reader_who_chose(app, "accept_all")
    [record] = records(app)
    for path in ("/", ARTICLE, "/sections/world", "/cookie-policy"):
        html = reader.get(path).get_data(as_text=True)
        assert record.consent_id not in html
        assert "csrf" not in html.lower() and "nonce" not in html.lower(), path


def test_the_preferences_page_shows_the_consent_id_and_is_never_stored(app):
    reader = reader_who_chose(app, "reject_all")
    [record] = records(app)
    response = reader.get("/consent")
    assert record.consent_id in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "private, no-store"


def test_a_first_visit_page_is_public_for_shared_caches_and_varies_on_what_changes_it(client):
    response = client.get(ARTICLE)
    assert response.headers["Cache-Control"] == FIRST_VISIT_CACHE_CONTROL
    assert {"Cookie", "Sec-GPC", "Accept-Encoding"} <= set(response.vary)
    assert response.headers["ETag"].startswith('"')


def test_a_page_for_a_reader_with_a_choice_is_private_and_revalidated(app):
    reader = reader_who_chose(app, "accept_all")
    response = reader.get(ARTICLE)
    assert response.headers["Cache-Control"] == "private, no-cache"
    again = reader.get(ARTICLE, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["Content-Security-Policy"] == response.headers["Content-Security-Policy"]


def test_a_response_that_sets_a_cookie_is_never_public(app, client):
    store_choice(client, OPTIONAL)
    response = client.get(ARTICLE, headers=GPC)
    assert "gu_session" in set_cookie_names(response)
    assert response.headers["Cache-Control"].startswith("private")


def test_the_gzipped_page_is_the_same_page(client):
    plain = client.get(ARTICLE)
    packed = client.get(ARTICLE, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'
    again = client.get(
        ARTICLE, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
    )
    assert again.status_code == 304
    assert client.get(ARTICLE, headers={"If-None-Match": packed.headers["ETag"]}).status_code == 200
    refused = client.get(ARTICLE, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data


def test_a_gpc_first_visit_is_its_own_variant(client):
    plain = client.get(ARTICLE)
    signalled = client.get(ARTICLE, headers=GPC)
    assert signalled.data != plain.data
    assert "Global Privacy Control" in signalled.get_data(as_text=True)


TALLY_SCRIPT = "https://cdn.tallyhouse.example/tally.js"
TALLY_ORIGIN = "https://cdn.tallyhouse.example"
TALLY_COLLECTOR = "https://collect.tallyhouse.example"


def script_sources(response) -> set[str]:
    policy = response.headers["Content-Security-Policy"]
    [directive] = [d for d in policy.split("; ") if d.startswith("script-src ")]
    return set(directive.split()[1:])


def test_the_policy_of_each_state_lists_exactly_the_scripts_it_may_run(app):
    """All sixteen states on one app, one after another, so a page or policy kept for one
    state and served to another would show."""
    for granted in STATES + STATES[::-1]:
        reader = reader_who_chose(app, "save", tuple(granted))
        response = reader.get(ARTICLE)
        html = response.get_data(as_text=True)
        with app.test_request_context():
            expected = {f"http://localhost{static_url('js/consent.js')}"} | {
                f"http://localhost{static_url(FEATURE_SCRIPTS[key])}" for key in granted
            }
        # A category ticked alone grants its services: analytics brings its vendor's script,
        # allowed by its origin.
        vendor = {TALLY_SCRIPT} if "analytics" in granted else set()
        origins = {TALLY_ORIGIN, TALLY_COLLECTOR} if vendor else set()
        assert script_sources(response) == expected | origins, sorted(granted)
        written = set(attributes(html, "script[src]", "src"))
        local = {f"http://localhost{src}" for src in written - vendor}
        assert local == expected and written & {TALLY_SCRIPT} == vendor, sorted(granted)
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_after_reject_all_the_policy_refuses_every_gated_script(app):
    reader = reader_who_chose(app, "accept_all")
    # the consent script, four features, and the analytics vendor's origin and collector
    assert len(script_sources(reader.get(ARTICLE))) == 7
    choose(reader, "reject_all")
    response = reader.get(ARTICLE)
    assert not any("/features/" in source for source in script_sources(response))
    assert not any("tallyhouse" in source for source in script_sources(response))
    assert "data-category" not in response.get_data(as_text=True)


def edit_article(app, folder, headline: str) -> None:
    import_articles(
        app,
        folder,
        ("cached-story", {"headline": headline, "section": "Energy", "body": "Words."}),
    )


@pytest.mark.parametrize("with_choice", [False, True], ids=["first visit", "with a choice"])
def test_an_edit_made_elsewhere_reaches_readers_within_the_check_interval(
    app_factory, tmp_path, with_choice
):
    """The edit is made by another app on the same database, as the CLI on another host would
    make it; the serving app notices within CONTENT_CHECK_SECONDS."""
    serving = app_factory(CONTENT_CHECK_SECONDS=1)
    editor = app_factory()
    edit_article(editor, tmp_path / "content", "The first headline")
    reader = reader_who_chose(serving, "accept_all") if with_choice else serving.test_client()

    assert "The first headline" in reader.get("/articles/cached-story").get_data(as_text=True)
    time.sleep(1.1)
    edit_article(editor, tmp_path / "content", "The corrected headline")
    deadline = time.monotonic() + 3
    while "The corrected headline" not in reader.get("/articles/cached-story").get_data(
        as_text=True
    ):
        assert time.monotonic() < deadline, "the edit did not reach the reader within 3 s"
        time.sleep(0.1)
    assert "The corrected headline" in reader.get("/").get_data(as_text=True)


def test_a_page_is_rendered_once_per_state(app, monkeypatch):
    from globalupdates.articles import views

    renders = []
    original = views.render_template
    monkeypatch.setattr(
        views, "render_template", lambda *a, **k: renders.append(a[0]) or original(*a, **k)
    )
    for _ in range(3):
        app.test_client().get(ARTICLE)
        reader_who_chose(app, "reject_all").get(ARTICLE)
    assert renders == ["articles/article.html", "articles/article.html"]


def test_a_replayed_cookie_with_gpc_records_the_opt_out_once(app, client):
    store_choice(client, OPTIONAL)
    with client.session_transaction() as session:
        replayed = dict(session)
    for _ in range(20):
        with client.session_transaction() as session:
            session.clear()
            session.update(replayed)
        for path in ("/healthz", ARTICLE, "/"):
            assert client.get(path, headers=GPC).status_code == 200
    assert [record.action for record in records(app)] == ["gpc_opt_out"]


def test_a_first_visit_with_gpc_writes_nothing(app, client):
    for path in ("/", ARTICLE, "/healthz"):
        client.get(path, headers=GPC)
    assert records(app) == []


def test_readers_behind_one_address_each_make_their_first_choice(app):
    """Before a choice readers cannot be told apart, so the per-reader limit waits for the
    consent id; once a reader has one, their own allowance counts again."""
    for _ in range(3 * 10):
        reader_who_chose(app, "reject_all")
    reader = reader_who_chose(app, "reject_all")
    statuses = [choose(reader, "accept_all").status_code for _ in range(11)]
    assert statuses[:10] == [303] * 10 and statuses[-1] == 429


@pytest.fixture
def kept_app(app_factory):
    """An app whose kept responses live long enough to be seen, counting what reaches Flask."""
    app = app_factory(CONTENT_CHECK_SECONDS=30)
    app.reached_flask = []
    app.before_request(lambda: app.reached_flask.append(request.path))
    with app.app_context():
        import_paths([CONTENT_DIR])
    return app


def comparable(response) -> tuple:
    headers = sorted(
        (k, v) for k, v in response.headers.items() if k not in ("Date", "X-Request-ID")
    )
    return response.status_code, headers, response.data


def test_a_repeated_request_is_answered_before_flask_exactly_as_flask_answered(kept_app):
    for make_reader in (
        lambda: kept_app.test_client(),
        lambda: reader_who_chose(kept_app, "accept_all"),
        lambda: reader_who_chose(kept_app, "save", ("analytics",)),
    ):
        reader = make_reader()
        first = reader.get(ARTICLE)
        kept_app.reached_flask.clear()
        again = reader.get(ARTICLE)
        assert kept_app.reached_flask == []
        assert comparable(again) == comparable(first)


def test_a_kept_page_is_shared_by_readers_in_the_same_state_and_follows_a_new_choice(kept_app):
    one = reader_who_chose(kept_app, "accept_all")
    page = one.get(ARTICLE).data
    other = reader_who_chose(kept_app, "accept_all")
    assert other.get(ARTICLE).data == page
    choose(one, "reject_all")
    after = one.get(ARTICLE).get_data(as_text=True)
    assert "data-category" not in after and "Accept All" not in after


def test_a_leftover_cookie_of_a_withdrawn_category_is_expired_on_every_request(kept_app):
    reader = reader_who_chose(kept_app, "reject_all")
    reader.get(ARTICLE)
    reader.get(ARTICLE)
    reader.set_cookie("gu_text_size", "large")
    for _ in range(3):
        response = reader.get(ARTICLE)
        assert "gu_text_size" in set_cookie_names(response)
        reader.set_cookie("gu_text_size", "large")


def test_a_kept_page_follows_the_text_size_and_the_gpc_signal(kept_app):
    reader = reader_who_chose(kept_app, "accept_all")
    reader.set_cookie("gu_text_size", "large")
    assert 'data-text-size="large"' in reader.get(ARTICLE).get_data(as_text=True)
    reader.set_cookie("gu_text_size", "small")
    assert 'data-text-size="small"' in reader.get(ARTICLE).get_data(as_text=True)
    first = kept_app.test_client()
    plain = first.get(ARTICLE).data
    assert first.get(ARTICLE, headers=GPC).data != plain
    assert first.get(ARTICLE).data == plain


# Every page a first visitor may be shown the GPC status on, in every edition.
GPC_STATUS_PAGES = [
    in_edition(path, lang)
    for lang in ("en", "de", "fr")
    for path in ("/", "/consent", "/cookie-policy", "/privacy")
] + [ARTICLE, NACHTZUG, MORVELLE_STATION]


@pytest.mark.parametrize("signal_first", [True, False], ids=["gpc-first", "plain-first"])
def test_no_layer_serves_a_gpc_page_to_a_reader_without_the_signal_or_the_reverse(
    kept_app, signal_first
):
    """Each page is rendered once per variant and every later answer comes from the kept
    responses or the page cache; each still says "honoured" exactly to the readers whose
    browser sent the signal."""
    for path in GPC_STATUS_PAGES:
        kept_app.reached_flask.clear()
        for sends_gpc in [signal_first, not signal_first] * 3:
            reader = kept_app.test_client()
            html = reader.get(path, headers=GPC if sends_gpc else {}).get_data(as_text=True)
            assert bool(select(html, ".consent-gpc")) is sends_gpc, (path, sends_gpc)
        assert kept_app.reached_flask == [path, path], "a page was not kept for its variant"


def test_a_page_that_allowed_an_embed_once_is_never_kept_for_others(app):
    """Allowing an embed once is one reader's act: a cached view that did so is rendered
    afresh for the next reader, whose policy frames nothing."""
    renders = []

    @cached_page
    def page_that_allows_once():
        renders.append(request.args.get("once") == "1")
        if renders[-1]:
            allow_provider_once("vidmoor")
        return "<!doctype html><title>t</title><p>embed</p>"

    app.add_url_rule("/test-allow-once", view_func=page_that_allows_once)
    client = app.test_client()
    first = client.get("/test-allow-once?once=1")
    assert "vidmoor" in first.headers["Content-Security-Policy"]
    for _ in range(2):
        again = client.get("/test-allow-once?once=1")
        assert "vidmoor" in again.headers["Content-Security-Policy"]
    assert renders == [True, True, True]
    plain = client.get("/test-allow-once")
    assert "vidmoor" not in plain.headers["Content-Security-Policy"]
