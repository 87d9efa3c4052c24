"""Returning readers from nginx's cache, keyed by the variant cookie the site verified.

deploy/nginx.conf runs as deployed in front of gunicorn. Every test mixes readers who chose
with forgers and hostile clients, then asks again as the ordinary readers: no reader may
receive a script their verified choice did not grant, nor miss the banner they must see, and
nothing a forged request brought may ever be stored where another reader finds it. A forged
variant can reach only the forger's own browser, which is said where a test shows it.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from globalupdates.consent.model.registry_file import load_registry
from globalupdates.sharedcache import CookieKey
from tests.support.consent import GPC, OPTIONAL, SAME_ORIGIN, gated_categories, operator_registry
from tests.support.gunicorn_server import running_gunicorn
from tests.support.html import attributes, parse
from tests.support.nginx_server import DEPLOYED_CONF, deployed_nginx, nginx_binary
from tests.support.pages import ARTICLE, MORVELLE_STATION, NACHTZUG
from tests.support.proxied_site import (
    MISSING_NGINX,
    PROXY_FIX,
    RAISED_LIMITS,
    Answer,
    Site,
    cookie_header,
    fresh,
    once_stored,
    static_root_for_nginx,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

ALL = set(OPTIONAL)
GERMAN_BROWSER = {"Accept_Language": "de-DE,de;q=0.9,en;q=0.5", "Sec_Fetch_Site": "none"}


@pytest.fixture(scope="module")
def site_root() -> Iterator[Path]:
    with static_root_for_nginx() as root:
        yield root


def behind_nginx(database: Path, folder: Path, site_root: Path, **settings: str):
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    return running_gunicorn(
        f"sqlite:///{database}",
        folder,
        {"WEB_CONCURRENCY": "2", **PROXY_FIX, **RAISED_LIMITS, **settings},
    )


@pytest.fixture(scope="module")
def site(migrated_sqlite: Path, site_root: Path, tmp_path_factory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("variants")
    database = folder / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    with (
        behind_nginx(database, folder, site_root) as server,
        deployed_nginx(server.port, site_root) as nginx,
    ):
        yield Site(port=nginx.port, app_port=server.port)
        nginx.stop()
        assert not re.search(r"\[(emerg|alert|crit)\]", nginx.error_log()), nginx.error_log()


def reader(
    site: Site,
    action: str,
    categories: tuple[str, ...] = (),
    services: tuple[str, ...] = (),
    **headers: str,
) -> dict[str, str]:
    """A reader who chose through nginx: the session and variant cookies the 303 set."""
    answer = site.choose(action, categories=categories, services=services, **SAME_ORIGIN, **headers)
    assert answer.status == 303, answer.body[:300]
    cookies = answer.cookies()
    assert set(cookies) == {"gu_session", "gu_variant"}, answer.cookies_set()
    return cookies


def visit(site: Site, path: str, cookies: dict[str, str] | None = None, **headers: str) -> Answer:
    if cookies:
        headers["Cookie"] = cookie_header(cookies)
    answer = site.get(path, **headers)
    assert answer.status == 200, (path, answer.status)
    return answer


def visit_once_stored(site: Site, path: str, cookies: dict[str, str] | None = None) -> Answer:
    """A visit meant to find the entry the visit before it filled (see ``once_stored``)."""
    return once_stored(lambda: visit(site, path, cookies))


def scripts(answer: Answer) -> set[str]:
    return gated_categories(answer.text())


def shows_banner(answer: Answer) -> bool:
    return bool(parse(answer.text()).select("#consent-banner"))


def assert_page_of(answer: Answer, granted: set[str]) -> None:
    """The page a reader with exactly these grants must get: their scripts, no banner."""
    assert scripts(answer) == granted, answer.cache_status
    assert not shows_banner(answer), answer.cache_status
    assert "private" in (answer.header("Cache-Control") or "")
    assert answer.header("X-Accel-Expires") is None, "nginx passed on what was meant for it"


def assert_first_visit_page(answer: Answer) -> None:
    assert scripts(answer) == set() and shows_banner(answer), answer.cache_status


def test_readers_who_chose_alike_share_one_cached_page(site):
    url = fresh(ARTICLE, "shared")
    one, other = reader(site, "accept_all"), reader(site, "accept_all")
    assert one["gu_variant"] == other["gu_variant"] and one["gu_session"] != other["gu_session"]
    first = visit(site, url, one)
    assert visit_once_stored(site, url, one).cache_status == "HIT"
    second = visit(site, url, other)
    assert (first.cache_status, second.cache_status) == ("MISS", "HIT")
    assert_page_of(first, ALL)
    assert_page_of(second, ALL)
    refused = reader(site, "reject_all")
    own = visit(site, url, refused)
    assert own.cache_status == "MISS"
    assert_page_of(own, set())
    assert visit(site, url, refused).cache_status == "HIT"


def test_readers_who_chose_different_services_never_share_a_cached_page(site):
    """Both granted functional; one allowed only the video host this story embeds, the other
    only the other host. Each gets their own page from nginx, never the other's."""
    url = fresh(ARTICLE, "services")
    vidmoor = reader(site, "save", ("functional",), services=("vidmoor",))
    clipwell = reader(site, "save", ("functional",), services=("clipwell",))
    assert vidmoor["gu_variant"] != clipwell["gu_variant"]
    framed = [visit(site, url, vidmoor) for _ in range(2)]
    placeholder = [visit(site, url, clipwell) for _ in range(2)]
    alike = visit(site, url, reader(site, "save", ("functional",), services=("vidmoor",)))
    assert [a.cache_status for a in (*framed, *placeholder, alike)] == [
        "MISS",
        "HIT",
        "MISS",
        "HIT",
        "HIT",
    ]
    for answer in (*framed, alike):
        assert attributes(answer.text(), "iframe", "src") != [], answer.cache_status
    for answer in placeholder:
        assert attributes(answer.text(), "iframe", "src") == [], answer.cache_status
        assert "player.vidmoor.example" not in (answer.header("Content-Security-Policy") or "")


def test_a_forged_variant_without_a_session_goes_to_the_site_and_stores_nothing(site):
    url = fresh(ARTICLE, "no-session")
    accepted = reader(site, "accept_all")
    assert visit(site, url, accepted).cache_status == "MISS"
    forged = {"gu_variant": accepted["gu_variant"]}
    for _ in range(2):
        answer = visit(site, url, forged)
        assert answer.cache_status == "BYPASS"
        assert_first_visit_page(answer)
        assert answer.cookies() == {"gu_variant": ""}, "the stray variant cookie is kept"
    assert_first_visit_page(visit(site, url))


@pytest.mark.parametrize("whose", ["another reader's", "the forger's own"])
def test_a_forged_variant_with_a_session_that_refused_is_never_stored(site, whose):
    url = fresh(ARTICLE, f"refused-{whose.split()[1]}")
    victim_or_forger = reader(site, "reject_all")
    accepted_value = reader(site, "accept_all")["gu_variant"]
    forged = {**victim_or_forger, "gu_variant": accepted_value}
    for _ in range(2):
        answer = visit(site, url, forged)
        assert answer.cache_status == "MISS", "the forged request found or left an entry"
        assert_page_of(answer, set())
        assert answer.cookies() == {"gu_variant": victim_or_forger["gu_variant"]}
    honest = reader(site, "accept_all")
    first, again = visit(site, url, honest), visit_once_stored(site, url, honest)
    assert (first.cache_status, again.cache_status) == ("MISS", "HIT")
    assert_page_of(first, ALL)
    assert_page_of(visit(site, url, victim_or_forger), set())
    # Once honest readers filled the entry, the forged cookie finds it: the page reaches only
    # the browser that forged the cookie, which could as well have pressed Accept All.
    assert visit(site, url, forged).cache_status == "HIT"


def test_a_variant_named_twice_in_any_letter_case_is_never_stored(site):
    url = fresh(ARTICLE, "twice")
    refused, accepted = reader(site, "reject_all"), reader(site, "accept_all")
    doubled = [
        f"gu_session={refused['gu_session']}; gu_variant={refused['gu_variant']}; "
        f"GU_VARIANT={accepted['gu_variant']}",
        f"gu_session={refused['gu_session']}; gu_variant={accepted['gu_variant']}; "
        f"gu_variant={refused['gu_variant']}",
    ]
    for header in doubled:
        for _ in range(2):
            answer = site.get(url, Cookie=header)
            assert answer.status == 200, header
            assert answer.cache_status in ("MISS", "BYPASS"), (header, answer.cache_status)
            assert_page_of(answer, set())
            assert "gu_variant" in answer.cookies(), "the variant cookie is not set right"
    first = visit(site, url, accepted)
    assert first.cache_status == "MISS"
    assert_page_of(first, ALL)


def test_after_a_withdrawal_the_reader_gets_the_page_of_the_new_choice(site):
    url = fresh(ARTICLE, "withdrawal")
    accepted, other = reader(site, "accept_all"), reader(site, "accept_all")
    assert_page_of(visit(site, url, accepted), ALL)
    withdrawal = site.choose("reject_all", **SAME_ORIGIN, Cookie=cookie_header(accepted))
    assert withdrawal.status == 303
    withdrawn = withdrawal.cookies()
    assert withdrawn["gu_variant"] != accepted["gu_variant"]
    for _ in range(2):
        assert_page_of(visit(site, url, withdrawn), set())
    assert_page_of(visit(site, url, other), ALL)


def test_gpc_keys_its_own_entries_and_a_revision_by_gpc_is_never_stored(site):
    url = fresh(ARTICLE, "gpc")
    accepted, other = reader(site, "accept_all"), reader(site, "accept_all")
    assert_page_of(visit(site, url, accepted), ALL)
    revised = [visit(site, url, accepted, **GPC) for _ in range(2)]
    for answer in revised:
        assert answer.cache_status == "MISS"
        assert_page_of(answer, ALL - {"advertisement"})
        assert "gu_session" in answer.cookies()
    cookies = revised[-1].cookies()
    after = [visit(site, url, cookies, **GPC) for _ in range(2)]
    assert [answer.cache_status for answer in after] == ["MISS", "HIT"]
    for answer in after:
        assert_page_of(answer, ALL - {"advertisement"})
    assert_page_of(visit(site, url, other), ALL)
    assert_page_of(visit(site, url, cookies), ALL - {"advertisement"})


def says_gpc_was_honoured(answer: Answer) -> bool:
    return bool(parse(answer.text()).select(".consent-gpc .gpc-honoured"))


@pytest.mark.parametrize("path", [ARTICLE, NACHTZUG, MORVELLE_STATION, "/de/", "/fr/consent"])
def test_nginx_gives_the_gpc_status_only_to_first_visitors_who_sent_the_signal(site, path):
    url = fresh(path, "gpc-status")
    answers = [(sends, visit(site, url, **(GPC if sends else {}))) for sends in (1, 0, 1, 0, 1, 0)]
    assert [answer.cache_status for _, answer in answers] == ["MISS", "MISS"] + ["HIT"] * 4
    for sends, answer in answers:
        assert says_gpc_was_honoured(answer) == bool(sends), answer.cache_status


def test_a_choice_made_under_gpc_is_its_own_variant(site):
    url = fresh(ARTICLE, "chosen-under-gpc")
    under_gpc = reader(site, "accept_all", **GPC)
    plain = reader(site, "accept_all")
    assert under_gpc["gu_variant"] != plain["gu_variant"]
    for headers in ({}, GPC, {}, GPC):
        assert_page_of(visit(site, url, under_gpc, **headers), ALL - {"advertisement"})
        assert_page_of(visit(site, url, plain), ALL)


def text_size(answer: Answer) -> str:
    [size] = attributes(answer.text(), "html", "data-text-size")
    return size


def test_the_text_size_is_part_of_the_key(site):
    url = fresh(ARTICLE, "text-size")
    functional = reader(site, "save", ("functional",))
    refused = reader(site, "reject_all")
    large = {**functional, "gu_text_size": "large"}
    for _ in range(2):
        assert text_size(visit(site, url, large)) == "large"
        assert text_size(visit(site, url, functional)) == "normal"
        assert text_size(visit(site, url, {**refused, "gu_text_size": "large"})) == "normal"
    for cased in (
        f"{cookie_header(large)}; GU_TEXT_SIZE=small",
        f"GU_TEXT_SIZE=small; {cookie_header(large)}",
    ):
        for _ in range(2):
            answer = site.get(url, Cookie=cased)
            assert answer.cache_status in ("MISS", "BYPASS"), (cased, answer.cache_status)
            assert text_size(answer) == "large"


def test_cookies_the_proxy_does_not_know_send_the_reader_past_the_cache(site):
    url = fresh(ARTICLE, "other-cookie")
    accepted = reader(site, "accept_all")
    for _ in range(2):
        answer = visit(site, url, {**accepted, "_stats_id": "1"})
        assert answer.cache_status == "BYPASS"
        assert_page_of(answer, ALL)


def test_a_cookie_the_reader_did_not_grant_is_cleared_never_cached(site):
    url = fresh(ARTICLE, "stray-reader-cookie")
    refused = reader(site, "reject_all")
    stray = {**refused, "gu_reader": "0123456789abcdef0123456789abcdef"}
    for _ in range(2):
        answer = visit(site, url, stray)
        assert answer.cache_status == "MISS"
        assert answer.cookies().get("gu_reader") == "", "the ungranted cookie was not cleared"
        assert_page_of(answer, set())


def test_each_edition_is_cached_apart_in_its_language(site):
    accepted = reader(site, "accept_all")
    german = fresh(NACHTZUG, "edition")
    for _ in range(2):
        answer = visit(site, german, accepted)
        assert_page_of(answer, ALL)
        assert attributes(answer.text(), "html", "lang") == ["de"]
        english = visit(site, fresh(ARTICLE, "edition"), accepted)
        assert attributes(english.text(), "html", "lang") == ["en"]


def banner_next(answer: Answer) -> str:
    [value] = attributes(answer.text(), "#consent-banner input[name=next]", "value")
    return value


def test_head_requests_leave_the_page_a_get_receives_alone(site):
    url = fresh(ARTICLE, "head")
    accepted = reader(site, "accept_all")
    for _ in range(6):
        assert site.request("HEAD", url).status == 200
        cookies = {"Cookie": cookie_header(accepted)}
        assert site.request("HEAD", url, headers=cookies).status == 200
    first_visit = visit(site, url)
    assert banner_next(first_visit) == url
    assert_page_of(visit(site, url, accepted), ALL)


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def policy_hosts(policy: str) -> set[str]:
    [directive] = [part for part in policy.split("; ") if part.startswith("script-src ")]
    return {source.split("/static/")[0] for source in directive.split()[1:] if "/static/" in source}


def test_http_1_0_without_a_host_leaves_other_readers_their_own_host(site):
    url = fresh(ARTICLE, "no-host")
    for _ in range(6):
        answer = raw_request(site.port, f"GET {url} HTTP/1.0\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    for _ in range(2):
        page = visit(site, url)
        assert policy_hosts(page.header("Content-Security-Policy") or "") == {site.origin}


def test_the_bare_root_with_an_empty_query_is_negotiated_like_the_bare_root(site):
    assert visit(site, "/?").cache_status in ("MISS", "HIT")
    assert visit(site, "/?").cache_status == "HIT"
    for _ in range(2):
        redirect = site.get("/?", **GERMAN_BROWSER)
        assert redirect.status == 302, redirect.status
        assert (redirect.header("Location") or "").endswith("/de/")


def test_the_files_cookie_names_are_the_sites_own_cookies():
    """deploy/nginx.conf names, in the cache key and in the list of cookies it knows, exactly
    the site's own cookies of the registry, in the order the site reads the key."""
    text = DEPLOYED_CONF.read_text()
    registry = load_registry(None)
    own = registry.first_party_cookie_names()
    [known] = re.findall(r"\(\?!\(\?:([^)]*)\)=\)", text)
    assert set(known.split("|")) == own | {"__Host-gu_variant"}
    key = CookieKey(
        session="gu_session",
        variant="gu_variant",
        values=("gu_text_size",),
        flags=tuple(sorted(own - {"gu_session", "gu_variant", "gu_text_size"})),
    )
    expected = "|".join(
        ["v=$gu_variant"] + [f"{name}=${name}" for name in (*key.values, *key.flags)]
    )
    assert f'set $gu_cache_cookies "{expected}";' in text


@pytest.fixture
def short_lived_site(migrated_sqlite, site_root, tmp_path) -> Iterator[tuple[Site, Path, int]]:
    """nginx in front of a port on which the test starts and stops gunicorn itself."""
    database = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    port = free_port()
    with deployed_nginx(port, site_root) as nginx:
        yield Site(port=nginx.port, app_port=port), database, port


def test_after_a_registry_revision_every_reader_is_asked_again_within_the_pages_lifetime(
    short_lived_site, tmp_path
):
    """A page nginx stored before the revision may still be served for its lifetime (here one
    second, by default SHARED_PAGE_MAX_AGE); after it, the old variant finds nothing and
    stores nothing, and the reader sees the banner."""
    site, database, port = short_lived_site
    settings = {"WEB_CONCURRENCY": "1", **PROXY_FIX, **RAISED_LIMITS}
    settings["FLASK_SHARED_PAGE_MAX_AGE"] = "1"
    url = fresh(ARTICLE, "revision")
    instance = tmp_path / "site"  # one instance folder, its proof keys kept across the restart
    with running_gunicorn(f"sqlite:///{database}", instance, settings, port=port):
        accepted = reader(site, "accept_all")
        assert_page_of(visit(site, url, accepted), ALL)
        assert visit(site, url, accepted).cache_status == "HIT"
    raised = operator_registry(tmp_path, revision=load_registry(None).revision + 1)
    settings["FLASK_CONSENT_REGISTRY"] = str(raised)
    with running_gunicorn(f"sqlite:///{database}", instance, settings, port=port):
        time.sleep(1.2)
        for _ in range(2):
            answer = visit(site, url, accepted)
            assert answer.cache_status in ("MISS", "EXPIRED"), answer.cache_status
            assert_first_visit_page(answer)
            assert answer.cookies().get("gu_variant") == "", "the old variant cookie stays"


def test_a_first_visit_is_served_stale_while_the_site_is_down_and_a_reader_never_is(
    short_lived_site, tmp_path
):
    site, database, port = short_lived_site
    settings = {"WEB_CONCURRENCY": "1", **PROXY_FIX, **RAISED_LIMITS}
    settings["FLASK_SHARED_PAGE_MAX_AGE"] = "1"
    url = fresh(ARTICLE, "down")
    with running_gunicorn(f"sqlite:///{database}", tmp_path / "up", settings, port=port):
        accepted = reader(site, "accept_all")
        assert visit(site, url).cache_status == "MISS"
        assert visit(site, url, accepted).cache_status == "MISS"
        assert visit(site, url, accepted).cache_status == "HIT"
    time.sleep(1.2)
    stale = site.get(url)
    assert stale.status == 200 and stale.cache_status == "STALE"
    assert_first_visit_page(stale)
    gone = site.get(url, Cookie=cookie_header(accepted))
    assert gone.status == 502, gone.cache_status
