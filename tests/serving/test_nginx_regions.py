"""Regions behind deploy/nginx.conf as deployed: nginx looks each reader's address up in a
GeoIP2 database (a small one the tests build, tests/support/geoip.py, read by Debian's
libnginx-mod-http-geoip2), keys every page on the regime of that place, and overwrites the
place headers the site reads. Readers come from loopback addresses that stand for places.

nginx and its GeoIP2 module are required here, not optional: ``make test-tools`` installs
them, so without them these fail.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from globalupdates.consent.model.registry_file import load_registry
from globalupdates.consent.reporting.nginx_regions import nginx_map, shipped_map
from tests.support.consent import SAME_ORIGIN, gated_categories
from tests.support.geoip import PLACES, UNKNOWN_ADDRESS
from tests.support.gunicorn_server import running_gunicorn
from tests.support.html import select
from tests.support.nginx_hosts import HOSTS_CONF
from tests.support.nginx_server import (
    DEPLOYED_CONF,
    deployed_nginx,
    nginx_binary,
    nginx_conf_for,
    running_nginx,
)
from tests.support.pages import ARTICLE
from tests.support.proxied_site import (
    MISSING_NGINX,
    PROXY_FIX,
    RAISED_LIMITS,
    Answer,
    Site,
    fresh,
    once_stored,
    static_root_for_nginx,
)

GEOIP_MODULE = Path("/usr/lib/nginx/modules/ngx_http_geoip2_module.so")
PLACE_SETTINGS = {
    "FLASK_COUNTRY_HEADER": "X-Country",
    "FLASK_REGION_HEADER": "X-Country-Region",
}
CALIFORNIA, GERMANY, NEW_YORK, TOR, TEXAS, BRAZIL = (
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
    "127.0.0.5",
    "127.0.0.6",
    "127.0.0.7",
)
OPT_OUT_PLACES = (CALIFORNIA, TEXAS)
OPT_IN_PLACES = (GERMANY, NEW_YORK, TOR, BRAZIL, UNKNOWN_ADDRESS)
OPT_OUT_RUNS = {"analytics", "performance"}
FORGED_PLACE = {
    "X-Country": "US",
    "X-Country-Region": "CA",
    "X-Cache-Key-Regime": "opt-out",
    "CF-IPCountry": "US",
}


def test_the_shipped_nginx_map_is_the_one_the_registry_gives():
    """deploy/nginx.conf (and the several-hosts file written from it) hold the map of
    `flask consent nginx-regions`; a change to the registry's regions must be written there."""
    expected = nginx_map(load_registry().regions)
    for conf in (DEPLOYED_CONF, HOSTS_CONF):
        assert shipped_map(conf.read_text(encoding="utf-8")) == expected, (
            f"{conf.name} holds another regions map: run "
            "`flask consent nginx-regions --write deploy/nginx.conf` and `make nginx-hosts`"
        )


def test_the_test_database_covers_both_regimes_and_the_unknown():
    regions = load_registry().regions
    names = {address: regions.regime_name_of(*place) for address, place in PLACES.items()}
    assert {names[address] for address in OPT_OUT_PLACES} == {"opt-out"}
    assert {names.get(address, "opt-in") for address in OPT_IN_PLACES} == {"opt-in"}


@pytest.fixture(scope="module")
def site_root() -> Iterator[Path]:
    with static_root_for_nginx() as root:
        yield root


def gunicorn_settings() -> dict[str, str]:
    return {"WEB_CONCURRENCY": "2", **PROXY_FIX, **RAISED_LIMITS, **PLACE_SETTINGS}


@pytest.fixture(scope="module")
def site(
    migrated_sqlite: Path, site_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """gunicorn reading the place headers behind the deployed nginx.conf with its GeoIP2
    module and the tests' database."""
    assert nginx_binary() is not None, MISSING_NGINX
    assert GEOIP_MODULE.exists(), "apt-get install libnginx-mod-http-geoip2 (make test-tools)"
    folder = tmp_path_factory.mktemp("regions-behind-nginx")
    database = folder / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    with (
        running_gunicorn(f"sqlite:///{database}", folder, gunicorn_settings()) as server,
        deployed_nginx(server.port, site_root) as nginx,
    ):
        yield Site(port=nginx.port, app_port=server.port)
        nginx.stop()
        assert not re.search(r"\[(emerg|alert|crit)\]", nginx.error_log()), nginx.error_log()


def is_opt_out_page(answer: Answer) -> bool:
    html = answer.text()
    return bool(select(html, "a.do-not-sell")) and gated_categories(html) >= OPT_OUT_RUNS


def is_opt_in_first_visit(answer: Answer) -> bool:
    html = answer.text()
    return (
        bool(select(html, "#consent-banner"))
        and not select(html, "a.do-not-sell")
        and gated_categories(html) == set()
    )


@pytest.mark.slow
@pytest.mark.parametrize("address", OPT_OUT_PLACES)
def test_a_reader_from_an_opt_out_place_gets_its_banner_and_scripts(site, address):
    answer = site.reader_at(address).get(fresh(ARTICLE, f"opt-out-{address}"))
    assert answer.status == 200
    assert is_opt_out_page(answer), answer.text()[:500]
    html = answer.text()
    assert select(html, "#consent-banner [data-regime=opt-out]")
    assert select(html, "#consent-banner a.do-not-sell") and select(html, "footer a.do-not-sell")


@pytest.mark.slow
@pytest.mark.parametrize("address", OPT_IN_PLACES)
def test_a_reader_from_an_opt_in_unknown_or_tor_place_gets_the_opt_in_banner(site, address):
    answer = site.reader_at(address).get(fresh(ARTICLE, f"opt-in-{address}"))
    assert answer.status == 200
    assert is_opt_in_first_visit(answer), answer.text()[:500]


FORGED_OPT_IN = {"X-Country": "DE", "X-Cache-Key-Regime": "opt-in", "CF-IPCountry": "DE"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "address, forged, opt_out",
    [
        (GERMANY, FORGED_PLACE, False),
        (UNKNOWN_ADDRESS, FORGED_PLACE, False),
        (TOR, FORGED_PLACE, False),
        (CALIFORNIA, FORGED_OPT_IN, True),
        (TEXAS, FORGED_OPT_IN, True),
    ],
)
def test_a_forged_place_header_from_a_client_is_ignored(site, address, forged, opt_out):
    """Whatever place or regime a client claims, nginx's lookup decides, in the page and in
    the cache alike."""
    url = fresh(ARTICLE, f"forged-{address}")
    reader = site.reader_at(address)
    first = reader.get(url, **header_args(forged))
    again = once_stored(lambda: reader.get(url, **header_args(forged)))
    for answer in (first, again):
        assert (is_opt_out_page if opt_out else is_opt_in_first_visit)(answer), answer.text()
    assert [first.cache_status, again.cache_status] == ["MISS", "HIT"]


def header_args(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("-", "_"): value for name, value in headers.items()}


@pytest.mark.slow
def test_no_regimes_cached_first_visit_is_ever_served_to_another(site):
    url = fresh(ARTICLE, "first-visits-by-regime")
    californian, german = site.reader_at(CALIFORNIA), site.reader_at(GERMANY)
    first = californian.get(url)
    assert first.cache_status == "MISS" and is_opt_out_page(first)
    assert once_stored(lambda: californian.get(url)).cache_status == "HIT"
    assert site.reader_at(TEXAS).get(url).cache_status == "HIT", "one entry per regime"
    for reader in (german, site.reader_at(TOR), site.reader_at(UNKNOWN_ADDRESS)):
        answer = reader.get(url)
        assert is_opt_in_first_visit(answer), answer.text()[:500]
    assert once_stored(lambda: german.get(url)).cache_status == "HIT"
    again = californian.get(url)
    assert again.cache_status == "HIT" and is_opt_out_page(again)
    vary = {part.strip().lower() for part in (first.header("Vary") or "").split(",")}
    assert {"x-country", "x-country-region"} <= vary, first.header("Vary")


def returning_cookies(answer: Answer) -> str:
    cookies = answer.cookies()
    assert cookies.get("gu_session") and cookies.get("gu_variant"), answer.cookies_set()
    return f"gu_session={cookies['gu_session']}; gu_variant={cookies['gu_variant']}"


@pytest.mark.slow
def test_no_regimes_cached_returning_readers_page_is_ever_served_to_another(site):
    """Two readers who made the same choice share a variant cookie, but a Californian's page
    links Do Not Sell in its footer and a German's must not."""
    url = fresh(ARTICLE, "returning-by-regime")
    californian, german = site.reader_at(CALIFORNIA), site.reader_at(GERMANY)
    cookie = returning_cookies(californian.choose("reject_all", **SAME_ORIGIN))
    first = californian.get(url, Cookie=cookie)
    assert first.cache_status == "MISS" and select(first.text(), "footer a.do-not-sell")
    assert once_stored(lambda: californian.get(url, Cookie=cookie)).cache_status == "HIT"
    other = returning_cookies(german.choose("reject_all", **SAME_ORIGIN))
    assert other.split("gu_variant=")[1] == cookie.split("gu_variant=")[1]
    for _ in range(2):
        answer = german.get(url, Cookie=other)
        assert answer.status == 200
        assert not select(answer.text(), "a.do-not-sell"), "a Californian's page reached Germany"
        assert not select(answer.text(), "#consent-banner")
    assert once_stored(lambda: german.get(url, Cookie=other)).cache_status == "HIT"


@pytest.mark.slow
def test_gpc_in_an_opt_out_place_refuses_on_the_first_request_and_the_page_says_so(site):
    url = fresh(ARTICLE, "gpc-in-california")
    californian = site.reader_at(CALIFORNIA)
    for _ in range(2):
        answer = californian.get(url, Sec_GPC="1")
        assert answer.status == 200 and answer.cookies_set() == []
        html = answer.text()
        assert gated_categories(html) == set()
        assert select(html, "#consent-banner [data-gpc-refused]")
        assert select(html, "footer a.do-not-sell")
    assert is_opt_out_page(californian.get(url))


@pytest.mark.slow
def test_a_page_nginx_keyed_on_another_regime_than_the_sites_is_never_stored(
    migrated_sqlite: Path, site_root: Path, tmp_path: Path
):
    """A stale map in nginx (here: New York made opt-out) must not put an opt-in page under
    the opt-out key: the site sees the regime nginx keyed on differs from its own, and tells
    no cache to store the page."""
    database = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    with running_gunicorn(f"sqlite:///{database}", tmp_path, gunicorn_settings()) as server:

        def stale(port: int, _prefix: Path) -> str:
            conf = nginx_conf_for(port, server.port, site_root)
            listed = '        "US-CA"'
            assert conf.count(listed) == 1
            return conf.replace(listed, '        "US-NY"  opt-out;\n' + listed)

        with running_nginx(stale) as nginx:
            new_yorker = Site(port=nginx.port, app_port=server.port).reader_at(NEW_YORK)
            url = fresh(ARTICLE, "stale-map")
            answers = [new_yorker.get(url) for _ in range(3)]
            assert all(is_opt_in_first_visit(answer) for answer in answers)
            assert [answer.cache_status for answer in answers] == ["MISS"] * 3
            assert "public" not in (answers[0].header("Cache-Control") or "")
