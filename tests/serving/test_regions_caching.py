"""Caching by regime: the regime, never the place, joins every key, and no cache is told to
store a page under a regime the site did not work out itself on that very request."""

from __future__ import annotations

import pytest

from globalupdates.consent.model.registry_file import load_registry
from globalupdates.consent.reporting.nginx_regions import BEGIN, END, nginx_map, shipped_map
from tests.serving.test_kept_responses import cookies_after, flask_dispatches
from tests.support.consent import gated_categories
from tests.support.html import select

PAGE = "/"  # the front page: there without any article imported

EDGE = {
    "COUNTRY_HEADER": "X-Country",
    "REGION_HEADER": "X-Country-Region",
    "PROXY_FIX_X_FOR": 1,
    "CDN_CACHE_KEY_HEADER": "X-CDN-Key",
}
CALIFORNIA = {"X-Country": "US", "X-Country-Region": "CA"}
GERMANY = {"X-Country": "DE"}


@pytest.fixture
def edge_app(app_factory):
    return app_factory(**EDGE)


def test_a_first_visit_names_the_place_headers_in_vary_and_is_public_when_the_regime_agrees(
    edge_app,
):
    client = edge_app.test_client()
    answer = client.get(PAGE, headers={**CALIFORNIA, "X-Cache-Key-Regime": "opt-out"})
    assert answer.headers["Cache-Control"].startswith("public")
    assert {"X-Country", "X-Country-Region"} <= set(answer.vary)


@pytest.mark.parametrize(
    "place, keyed", [(CALIFORNIA, "opt-in"), (GERMANY, "opt-out"), ({}, "opt-out")]
)
def test_a_first_visit_keyed_on_another_regime_is_never_public(edge_app, place, keyed):
    client = edge_app.test_client()
    for _ in range(2):  # the second from the kept responses, if anything kept it
        answer = client.get(PAGE, headers={**place, "X-Cache-Key-Regime": keyed})
        assert answer.headers["Cache-Control"] == "private, no-cache"


def test_a_regime_disagreement_is_counted_and_logged_once_per_worker(edge_app, caplog):
    from tests.serving.test_metrics import grew, scrape

    metrics = edge_app.test_client()
    before = scrape(metrics)
    client = edge_app.test_client()
    for number in range(3):
        client.get(f"{PAGE}?stale={number}", headers={**GERMANY, "X-Cache-Key-Regime": "opt-out"})
    after = scrape(metrics)
    assert grew(before, after, "globalupdates_regime_disagreements_total") == 3
    warnings = [r for r in caplog.records if "keyed a page on regime" in r.getMessage()]
    assert len(warnings) == 1
    assert "'opt-out'" in warnings[0].getMessage() and "'opt-in'" in warnings[0].getMessage()


def test_a_returning_readers_page_is_storable_by_nginx_only_under_the_readers_regime(edge_app):
    cookies = cookies_after(edge_app, "reject_all", **CALIFORNIA)
    client = edge_app.test_client(use_cookies=False)
    key = returning_key(cookies)
    agreed = client.get(
        PAGE,
        headers={
            **CALIFORNIA,
            "Cookie": cookies,
            "X-Cache-Key-Cookies": key,
            "X-Cache-Key-Regime": "opt-out",
        },
    )
    assert agreed.headers.get("X-Accel-Expires") == "30"
    other = client.get(
        PAGE,
        headers={
            **GERMANY,
            "Cookie": cookies,
            "X-Cache-Key-Cookies": key,
            "X-Cache-Key-Regime": "opt-out",
        },
    )
    assert other.headers.get("X-Accel-Expires") is None
    assert not select(other.get_data(as_text=True), "a.do-not-sell")


def returning_key(cookies: str) -> str:
    """The cookie part of nginx's key for a reader holding only these two cookies."""
    variant = cookies.split("gu_variant=")[1]
    return f"v={variant}|gu_text_size=|gu_ad_cap=0|gu_reader=0"


def test_a_choice_left_on_by_an_opt_out_default_has_a_variant_of_its_own(edge_app):
    """Two readers with the same categories, one who kept an opt-out place's defaults and one
    who granted them in an opt-in place, get different pages in an opt-in place (a banner and
    nothing running, or no banner and the scripts), so nginx must never key them alike."""
    defaulted = cookies_after(edge_app, "save", ("analytics", "performance"), **CALIFORNIA)
    granted = cookies_after(edge_app, "save", ("analytics", "performance"), **GERMANY)
    variant_of = {cookies: cookies.split("gu_variant=")[1] for cookies in (defaulted, granted)}
    assert variant_of[defaulted] != variant_of[granted]
    pages = {}
    for cookies in (defaulted, granted):
        answer = edge_app.test_client(use_cookies=False).get(
            PAGE, headers={**GERMANY, "Cookie": cookies}
        )
        pages[cookies] = answer.get_data(as_text=True)
        assert answer.headers.get("Set-Cookie") is None, "the variant cookie was already right"
    assert select(pages[defaulted], "#consent-banner")
    assert not select(pages[granted], "#consent-banner")


def test_while_the_site_reads_a_place_no_cdn_is_told_to_store_a_returning_readers_page(
    app_factory,
):
    for settings, told in ((EDGE, False), ({"CDN_CACHE_KEY_HEADER": "X-CDN-Key"}, True)):
        app = app_factory(**settings)
        cookies = cookies_after(app, "reject_all", **CALIFORNIA)
        key = returning_key(cookies)
        answer = app.test_client(use_cookies=False).get(
            PAGE, headers={**CALIFORNIA, "Cookie": cookies, "X-CDN-Key": key}
        )
        assert ("CDN-Cache-Control" in answer.headers) is told, settings


def test_the_kept_responses_keep_one_page_per_regime(edge_app):
    client = edge_app.test_client()
    seen = flask_dispatches(edge_app)
    for place in (
        CALIFORNIA,
        CALIFORNIA,
        GERMANY,
        GERMANY,
        {"X-Country": "US", "X-Country-Region": "TX"},
    ):
        client.get(PAGE, headers=place)
    assert seen == [PAGE, PAGE], "one render per regime, not per place"
    californian = client.get(PAGE, headers=CALIFORNIA).get_data(as_text=True)
    german = client.get(PAGE, headers=GERMANY).get_data(as_text=True)
    assert gated_categories(californian) == {"analytics", "performance"}
    assert gated_categories(german) == set()


def test_the_nginx_regions_command_prints_the_map_of_the_registry(runner):
    result = runner.invoke(args=["consent", "nginx-regions"])
    assert result.exit_code == 0, result.output
    assert result.output == nginx_map(load_registry().regions)
    assert '"US-CA"  opt-out;' in result.output
    assert '"DE"' not in result.output, "opt-in places need no line"


def test_the_nginx_regions_command_writes_the_block_in_place(runner, tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{\n{BEGIN}    map old;\n{END}}}\n", encoding="utf-8")
    result = runner.invoke(args=["consent", "nginx-regions", "--write", str(conf)])
    assert result.exit_code == 0, result.output
    written = conf.read_text(encoding="utf-8")
    assert shipped_map(written) == nginx_map(load_registry().regions)
    assert written.startswith("http {\n") and written.endswith("}\n")


def test_the_nginx_regions_command_refuses_a_file_without_the_block(runner, tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text("http {}\n", encoding="utf-8")
    result = runner.invoke(args=["consent", "nginx-regions", "--write", str(conf)])
    assert result.exit_code != 0
    assert "regions block" in result.output
    assert conf.read_text(encoding="utf-8") == "http {}\n"


def test_a_subdivision_listed_otherwise_than_its_country_gets_its_own_line(tmp_path):
    from globalupdates.consent.model.regions import Regions
    from globalupdates.consent.reporting.nginx_regions import map_lines

    regions = Regions(
        places={"FR": "opt-out", "FR-IDF": "opt-in", "FR-ARA": "opt-out", "US-CA": "opt-out"},
        opt_out_categories=frozenset({"analytics"}),
    )
    assert map_lines(regions) == [
        ('"~^FR-"', "opt-out"),
        ('"FR-IDF"', "opt-in"),
        ('"US-CA"', "opt-out"),
    ]
