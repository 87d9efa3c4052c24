"""A reader's consent, end to end through the app: banner, choices, gating, withdrawal."""

from __future__ import annotations

import pytest

from tests.support.consent import (
    BUILTIN_REVISION,
    FIRST_VISIT_CACHE_CONTROL,
    OPTIONAL,
    SAME_ORIGIN,
    checked_boxes,
    choose,
    gated_categories,
    records,
    set_cookie_names,
    static_path,
    stored_choice,
)
from tests.support.html import (
    EXECUTABLE_SCRIPTS,
    attribute,
    attributes,
    link_targets,
    one,
    select,
    texts,
)
from tests.support.pages import ARTICLE, HTML_PAGES


@pytest.mark.parametrize("path", HTML_PAGES)
def test_first_visit_shows_banner_runs_nothing_and_sets_no_cookie(app, client, path):
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert 'id="consent-banner"' in html or path == "/consent"
    assert gated_categories(html) == set()
    scripts = select(html, EXECUTABLE_SCRIPTS)
    assert [attribute(tag, "src") for tag in scripts] == [static_path(app, "js/consent.js")]
    assert set_cookie_names(response) == []


def test_banner_offers_accept_and_reject_as_equal_buttons_and_customize(client):
    html = client.get(ARTICLE).get_data(as_text=True)
    banner = one(html, "#consent-banner")
    form = one(banner, 'form[method="post"][action="/consent"]')
    accept, reject = select(form, "button")
    assert texts(form, "button") == ["Accept All", "Reject All"]
    assert (accept["name"], accept["value"]) == ("action", "accept_all")
    assert (reject["name"], reject["value"]) == ("action", "reject_all")
    assert {**accept.attrs, "value": "X"} == {**reject.attrs, "value": "X"}, "styled alike"
    assert link_targets(form, "Customize") == [f"/consent?next={ARTICLE}"]
    assert "/cookie-policy" in attributes(banner, "a", "href")


def test_article_is_fully_readable_without_any_choice(client):
    html = client.get(ARTICLE).get_data(as_text=True)
    assert "## " not in html
    assert html.count("<p>") > 8
    assert "Money, fish and doubts" in html


def test_accept_all_grants_every_category_and_records_it(app, client):
    response = choose(client, "accept_all", page=ARTICLE, next_path=ARTICLE)
    assert response.status_code == 303
    assert response.headers["Location"] == ARTICLE
    choice = stored_choice(client)
    assert choice is not None
    assert set(choice["categories"]) == {"necessary", *OPTIONAL}
    assert choice["revision"] == BUILTIN_REVISION and choice["id"] and choice["made_at"]
    html = client.get(ARTICLE).get_data(as_text=True)
    assert 'id="consent-banner"' not in html
    assert gated_categories(html) == set(OPTIONAL)
    [record] = records(app)
    assert record.action == "accept_all"
    assert record.categories == ["necessary", *OPTIONAL]
    assert record.consent_id == choice["id"]


def test_reject_all_grants_nothing_and_is_remembered(app, client):
    response = choose(client, "reject_all", page=ARTICLE, next_path=ARTICLE)
    assert response.status_code == 303
    assert stored_choice(client)["categories"] == ["necessary"]
    for path in ("/", ARTICLE):
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert 'id="consent-banner"' not in html
        assert gated_categories(html) == set()
        assert set(set_cookie_names(page)) <= {"gu_session"}
    [record] = records(app)
    assert (record.action, record.categories) == ("reject_all", ["necessary"])


def test_custom_choice_grants_exactly_what_was_ticked(app, client):
    response = choose(client, "save", ("analytics",))
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert sorted(stored_choice(client)["categories"]) == ["analytics", "necessary"]
    html = client.get(ARTICLE).get_data(as_text=True)
    assert gated_categories(html) == {"analytics"}
    pageviews = static_path(app, "features/pageviews.js")
    assert f'src="{pageviews}" data-category="analytics"' in html
    [record] = records(app)
    assert (record.action, record.categories) == ("save", ["necessary", "analytics"])


def test_preferences_are_never_pre_ticked_on_a_first_visit(client):
    html = client.get("/consent").get_data(as_text=True)
    for key in OPTIONAL:
        one(html, f'input[type=checkbox][id="{key}"][name="{key}"]')
    assert checked_boxes(html) == set()
    assert "Always active" in html
    assert 'name="necessary"' not in html


def test_preferences_show_the_current_choice_afterwards(client):
    choose(client, "save", ("functional", "performance"))
    html = client.get("/consent").get_data(as_text=True)
    assert checked_boxes(html) == {"functional", "performance"}


def test_preferences_form_posts_every_field_the_contract_names(client):
    html = client.get("/consent?next=/articles/x").get_data(as_text=True)
    form = one(html, 'form.preferences-form[method="post"][action="/consent"]')
    fields = set(attributes(form, "input, button, select, textarea", "name"))
    # no token: forgery protection needs none
    assert fields == {"next", "action", *OPTIONAL, "services"}
    assert attribute(one(form, 'input[type=hidden][name="next"]'), "value") == "/articles/x"
    assert "save" in attributes(form, 'button[name="action"]', "value")


def cookie_row(html: str, cookie: str) -> list[str]:
    """The cells of the cookie table's row for ``cookie``: name, set by, kept for, purpose."""
    rows = [texts(row, "td") for row in select(html, "table.cookie-table tr")]
    [row] = [cells for cells in rows if cells[:1] == [cookie]]
    return row


def test_preferences_and_policy_show_each_categorys_cookies(client):
    for path in ("/consent", "/cookie-policy"):
        html = client.get(path).get_data(as_text=True)
        for title in ("Necessary", "Functional", "Analytics", "Performance", "Advertisement"):
            assert f">{title}" in html
        for cookie, duration in (
            ("gu_session", "182 days"),
            ("gu_text_size", "1 year"),
            ("gu_reader", "13 months"),
            ("gu_ad_cap", "1 day"),
        ):
            assert cookie_row(html, cookie)[2] == duration
        assert html.count("No cookies to display.") == 1


def test_withdrawal_expires_the_cookies_of_withdrawn_categories(client):
    choose(client, "accept_all")
    for name, value in (("gu_text_size", "large"), ("gu_reader", "a" * 32), ("gu_ad_cap", "1")):
        client.set_cookie(name, value)
    response = choose(client, "save", ("functional",))
    expired = {
        header.split("=", 1)[0]
        for header in response.headers.getlist("Set-Cookie")
        if "Max-Age=0" in header or "Expires=Thu, 01 Jan 1970" in header
    }
    assert expired == {"gu_reader", "gu_ad_cap"}
    assert gated_categories(client.get(ARTICLE).get_data(as_text=True)) == {"functional"}
    assert client.get_cookie("gu_reader") is None
    assert client.get_cookie("gu_text_size") is not None


def test_cookies_of_ungranted_categories_are_expired_on_any_page(client):
    client.set_cookie("gu_ad_cap", "2")
    response = client.get("/")
    assert any(h.startswith("gu_ad_cap=;") for h in response.headers.getlist("Set-Cookie"))


def test_every_page_links_cookie_settings(client):
    choose(client, "reject_all")
    for path in HTML_PAGES:
        assert ">Cookie settings</a>" in client.get(path).get_data(as_text=True)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "articles/relative",
        "/\x00bad",
    ],
)
def test_next_never_leaves_the_site(client, target):
    response = choose(client, "reject_all", next_path=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_keeps_a_same_site_path_and_query(client):
    response = choose(client, "reject_all", next_path="/articles/a-story?page=2")
    assert response.headers["Location"] == "/articles/a-story?page=2"


def test_choice_survives_a_long_pause_before_clicking(client, monkeypatch):
    """A page may have sat in a tab (or in a cache) for hours; its banner still posts, since
    nothing in it expires."""
    from itsdangerous import timed

    real = timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(timed.TimestampSigner, "get_timestamp", lambda self: real(self) - 7200)
    html = client.get(ARTICLE).get_data(as_text=True)
    monkeypatch.setattr(timed.TimestampSigner, "get_timestamp", real)
    hidden = select(one(html, "#consent-banner form"), "input[type=hidden]")
    fields = {attribute(field, "name"): attribute(field, "value") for field in hidden}
    assert fields == {"next": ARTICLE}
    response = client.post("/consent", data={**fields, "action": "accept_all"}, headers=SAME_ORIGIN)
    assert response.status_code == 303
    assert response.headers["Location"] == ARTICLE
    assert "advertisement" in stored_choice(client)["categories"]


def test_session_cookie_is_httponly_and_lax_and_secure_over_https(app):
    [plain] = [
        cookie
        for cookie in choose(app.test_client(), "reject_all").headers.getlist("Set-Cookie")
        if cookie.startswith("gu_session=")
    ]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    over_https = app.test_client()
    over_https.get("/consent", base_url="https://localhost")
    secure = over_https.post(
        "/consent",
        data={"action": "reject_all"},
        base_url="https://localhost",
        headers=SAME_ORIGIN,
    ).headers.getlist("Set-Cookie")
    assert sorted(cookie.split("=", 1)[0] for cookie in secure) == [
        "__Host-gu_variant",
        "gu_session",
    ]
    assert all("Secure" in cookie for cookie in secure)


def test_stored_choice_makes_the_session_last_its_lifetime(client):
    response = choose(client, "reject_all")
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("gu_session=")]
    assert "Expires=" in cookie


def test_pages_are_shared_until_the_reader_chooses_then_private(client):
    for path in ("/", ARTICLE):
        first = client.get(path)
        assert first.headers["Cache-Control"] == FIRST_VISIT_CACHE_CONTROL
        assert "Set-Cookie" not in first.headers
    choose(client, "reject_all")
    for path in ("/", ARTICLE):
        assert client.get(path).headers["Cache-Control"] == "private, no-cache"
    # the preferences page shows the reader's consent id: no cache may keep it
    assert client.get("/consent").headers["Cache-Control"] == "private, no-store"
