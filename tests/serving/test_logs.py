"""Logs: one JSON object per line, each line of a request with its request id, the id returned
in ``X-Request-ID`` (fresh on every answer, a kept one too), taken from a proxy only when the
site is told it is behind one, and no reader's consent id, full address or cookie value in
any line (globalupdates.logs)."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from globalupdates.database import error_summary
from globalupdates.extensions import db
from globalupdates.logs import (
    REQUEST_ID_SHAPE,
    has_request_id_shape,
    logging_config,
    truncated_address,
)
from tests.serving.test_kept_responses import kept_layer
from tests.serving.test_load import stored_consents
from tests.serving.test_server_errors import raw_exchange
from tests.support.consent import SAME_ORIGIN
from tests.support.gunicorn_server import Server, running_gunicorn
from tests.support.nginx_server import DEPLOYED_CONF, deployed_nginx, nginx_binary
from tests.support.pages import ARTICLE
from tests.support.proxied_site import (
    MISSING_NGINX,
    PROXY_FIX,
    RAISED_LIMITS,
    Answer,
    Site,
    static_root_for_nginx,
)

# One worker: its kept responses answer the second request for a page.
ACCESS_LOG_ON = {"GUNICORN_ACCESSLOG": "-", "WEB_CONCURRENCY": "1"}
NGINX_STYLE_ID = "0123456789abcdef0123456789abcdef"


def log_records(server: Server) -> list[dict[str, Any]]:
    """Every line gunicorn and the site wrote, each parsed as JSON (a line that is not JSON
    fails here). ``flask prepare``'s own answer on stdout is the one line that is no log."""
    records = []
    for line in server.log_text().splitlines():
        if line.strip() in ("", "Database ready."):
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
    return records


def lines_of(records: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [record for record in records if record.get("request_id") == request_id]


def access_line(records: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    found = [r for r in lines_of(records, request_id) if r["logger"] == "gunicorn.access"]
    assert len(found) == 1, f"access lines for {request_id}: {found}"
    return found[0]


def direct(server: Server) -> Site:
    """The site as a client reaches gunicorn itself, with no proxy in front."""
    return Site(port=server.port, app_port=server.port)


def request_id_of(answer: Answer) -> str:
    request_ids = answer.every("X-Request-ID")
    assert len(request_ids) == 1, request_ids
    assert has_request_id_shape(request_ids[0])
    return request_ids[0]


# ---- in the process ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.57", "203.0.113.0"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::"),
        ("2001:db8::1", "2001:db8::"),
        ("::ffff:198.51.100.7", "198.51.100.0"),
        ("unix:/run/gunicorn.sock", "-"),
        (None, "-"),
    ],
)
def test_an_address_is_cut_to_its_network(address: str | None, network: str):
    assert truncated_address(address) == network


@given(st.ip_addresses())
def test_no_address_survives_truncation(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    cut = ipaddress.ip_address(truncated_address(str(address)))
    prefix = 24 if cut.version == 4 else 48
    assert ipaddress.ip_network(f"{cut}/{prefix}").network_address == cut
    if address.version == cut.version:
        assert address in ipaddress.ip_network(f"{cut}/{prefix}")


def nginx_client_network(address: str) -> str:
    """What deploy/nginx.conf's ``$gu_client_network`` map makes of ``$remote_addr``: its
    patterns tried in order, as nginx tries them."""
    block = re.search(
        r"map \$remote_addr \$gu_client_network \{(.*?)\n    \}", DEPLOYED_CONF.read_text(), re.S
    )
    assert block, "deploy/nginx.conf has no $gu_client_network map"
    default = None
    for line in block.group(1).strip().splitlines():
        pattern, value = line.strip().rstrip(";").rsplit(None, 1)
        if pattern == "default":
            default = value
            continue
        match = re.search(pattern.strip('"')[1:].replace("(?<", "(?P<"), address)
        if match:
            return value.replace("$net", match.groupdict().get("net") or "")
    assert default is not None
    return default


@given(st.ip_addresses())
def test_nginx_cuts_an_address_to_the_network_the_site_logs(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
):
    """nginx writes ``$remote_addr`` as Python does (RFC 5952: lower case, the longest run of
    zero groups compressed), but an IPv4-mapped address with its IPv4 part dotted."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    written = f"::ffff:{mapped}" if mapped else str(address)
    cut = nginx_client_network(written)
    assert ipaddress.ip_address(cut) == ipaddress.ip_address(truncated_address(written))


def test_a_log_format_or_level_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config("xml", "INFO")
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        logging_config("json", "LOUD")


def test_a_database_error_names_the_statement_without_its_values(app: Flask):
    """What the site logs of a failed statement holds no value, so no consent id: neither the
    driver's first line (``error_summary``, what the outage lines give) nor the statement
    SQLAlchemy adds to its message (in the traceback of an error nothing expected)."""
    marker = "5f0c3c1e-6d4b-4b8e-9a57-logged-never"
    with app.app_context(), pytest.raises(DBAPIError) as failed:
        db.session.execute(
            text("INSERT INTO consent_record (consent_id) VALUES (:consent_id)"),
            {"consent_id": marker},
        )
    statement = str(failed.value).partition("[SQL:")[2]
    assert "consent_record" in statement
    assert marker not in statement
    assert marker not in error_summary(failed.value)


def test_each_answer_carries_a_request_id_of_its_own(app: Flask):
    client = app.test_client()
    first = client.get(ARTICLE)
    second = client.get(ARTICLE)
    assert first.status_code == second.status_code == 200
    ids = [answer.headers.getlist("X-Request-ID") for answer in (first, second)]
    assert all(len(found) == 1 and has_request_id_shape(found[0]) for found in ids), ids
    assert ids[0] != ids[1]


def test_a_kept_response_is_kept_without_the_id_it_first_went_out_with(app: Flask):
    client = app.test_client()
    answers = [client.get(ARTICLE) for _ in range(3)]
    ids = {answer.headers["X-Request-ID"] for answer in answers}
    assert len(ids) == 3
    entries = list(kept_layer(app).kept.values())
    assert entries, "the article was not kept: this test no longer tests the kept layer"
    for entry in entries:
        assert "x-request-id" not in {name.lower() for name, _ in entry.headers}


def test_a_client_not_behind_a_trusted_proxy_cannot_choose_its_id(app: Flask):
    answer = app.test_client().get(ARTICLE, headers={"X-Request-ID": NGINX_STYLE_ID})
    assert answer.headers["X-Request-ID"] != NGINX_STYLE_ID


def test_behind_a_trusted_proxy_its_id_is_taken(app_factory):
    app = app_factory(PROXY_FIX_X_FOR=1)
    answer = app.test_client().get(ARTICLE, headers={"X-Request-ID": NGINX_STYLE_ID})
    assert answer.headers.getlist("X-Request-ID") == [NGINX_STYLE_ID]


HOSTILE_IDS = st.one_of(
    st.text(min_size=65, max_size=300, alphabet="abcdef0123456789"),
    st.text(max_size=7, alphabet="abcdef0123456789"),
    st.text(min_size=8, max_size=64).filter(lambda text: not REQUEST_ID_SHAPE.fullmatch(text)),
)


def test_a_hostile_request_id_from_the_proxy_is_replaced(app_factory):
    client = app_factory(PROXY_FIX_X_FOR=1).test_client()

    @settings(max_examples=100, deadline=None)
    @given(hostile=HOSTILE_IDS)
    def check(hostile: str) -> None:
        wire = hostile.encode("latin-1", "replace").decode("latin-1")
        wire = "".join(ch for ch in wire if ch not in "\r\n\0").strip() or "x"
        assume(not has_request_id_shape(wire))
        given_back = client.get("/healthz", headers={"X-Request-ID": wire}).headers
        assert len(given_back.getlist("X-Request-ID")) == 1
        assert given_back["X-Request-ID"] != wire
        assert has_request_id_shape(given_back["X-Request-ID"])

    check()


# ---- under gunicorn ------------------------------------------------------------------------


@pytest.fixture
def site_database(migrated_sqlite: Path, tmp_path: Path) -> Path:
    path = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    return path


@pytest.fixture
def logged_site(site_database: Path, tmp_path: Path) -> Iterator[Server]:
    """The site under gunicorn with its access log on, reached directly (no proxy)."""
    with running_gunicorn(f"sqlite:///{site_database}", tmp_path, ACCESS_LOG_ON) as server:
        yield server


@pytest.mark.slow
def test_every_request_leaves_a_json_access_line_with_the_id_it_answered(logged_site: Server):
    site = direct(logged_site)
    answers = {
        "render": site.get(ARTICLE),
        "kept": site.get(ARTICLE),
        "static": site.get("/static/css/site.css"),
        "missing": site.get("/no-such-page"),
        "choice": site.choose("accept_all", **SAME_ORIGIN),
        "foreign id": site.get(ARTICLE, x_request_id=NGINX_STYLE_ID),
    }
    logged_site.process.terminate()
    logged_site.process.wait(timeout=30)
    records = log_records(logged_site)
    for label, answer in answers.items():
        line = access_line(records, request_id_of(answer))
        assert line["status"] == answer.status, label
        assert line["bytes"] == len(answer.body), label
        assert line["duration_ms"] >= 0, label
        assert line["client"] == "127.0.0.0", label
    assert access_line(records, request_id_of(answers["render"]))["layer"] == "render"
    assert access_line(records, request_id_of(answers["kept"]))["layer"] == "kept"
    assert request_id_of(answers["foreign id"]) != NGINX_STYLE_ID
    assert NGINX_STYLE_ID not in logged_site.log_text()


def site_lines_once_stopped(server: Server, answer: Answer) -> list[dict[str, Any]]:
    """The site's own lines (not gunicorn's access line) of the request ``answer`` answered,
    read once the server has stopped and written all it had."""
    server.process.terminate()
    server.process.wait(timeout=30)
    return [
        record
        for record in lines_of(log_records(server), request_id_of(answer))
        if record["logger"] != "gunicorn.access"
    ]


@pytest.mark.slow
def test_a_refused_cross_origin_post_leaves_one_clear_line(logged_site: Server):
    answer = direct(logged_site).choose("accept_all", sec_fetch_site="cross-site")
    assert answer.status == 403
    site_lines = site_lines_once_stopped(logged_site, answer)
    assert len(site_lines) == 1, site_lines
    assert site_lines[0]["level"] == "INFO"
    assert "refused a cross-origin POST /consent" in site_lines[0]["message"]


@pytest.mark.slow
def test_a_database_outage_leaves_one_clear_line(logged_site: Server, site_database: Path):
    site_database.unlink()
    answer = direct(logged_site).choose("accept_all", **SAME_ORIGIN)
    assert answer.status == 503
    site_lines = site_lines_once_stopped(logged_site, answer)
    assert len(site_lines) == 1, site_lines
    assert site_lines[0]["level"] == "WARNING"
    assert "not stored, answered 503" in site_lines[0]["message"]
    assert "is missing" in site_lines[0]["message"]
    assert "Traceback" not in logged_site.log_text()


@pytest.mark.slow
def test_the_logs_name_no_reader_after_a_run_of_choices(database_uri: str, tmp_path: Path):
    """Choices, returning readers, page views and a reader past their rate limit (whose
    refusal Flask-Limiter would log with the reader's consent id)."""
    limits = {**ACCESS_LOG_ON, "FLASK_RATELIMIT_CONSENT_PER_READER": "3 per minute"}
    with running_gunicorn(database_uri, tmp_path, limits) as server:
        site = direct(server)
        cookies = []
        for action in ("accept_all", "reject_all", "accept_all", "reject_all"):
            cookie = site.choose(action, **SAME_ORIGIN).session_cookie()
            assert cookie
            cookies.append(cookie)
            site.get(ARTICLE, cookie=f"gu_session={cookie}")
            site.count_view(cookie)
        statuses = [site.choose("accept_all", cookies[0], **SAME_ORIGIN).status for _ in range(5)]
        assert 429 in statuses, statuses
        unreadable = b"GET / NOT-HTTP\r\nHost: localhost\r\n\r\n"
        assert raw_exchange(server.port, unreadable)[0] == 400
    text = server.log_text()
    records = log_records(server)
    made = stored_consents(database_uri)
    assert len(made) == 4
    assert not [consent_id for consent_id in made if consent_id in text]
    assert not [cookie for cookie in cookies if cookie in text]
    assert [r for r in records if r["message"].startswith("Invalid request from ip=127.0.0.0:")]
    # The site's own address, in gunicorn's start-up lines and its control socket's name.
    bound = re.compile(rf"127\.0\.0\.1[:-]{server.port}")
    assert not [line for line in text.splitlines() if "127.0.0.1" in bound.sub("", line)]


@pytest.mark.slow
def test_behind_nginx_one_id_follows_a_request_and_a_cached_answer_gets_its_own(
    site_database: Path, tmp_path: Path
):
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    settings = {**ACCESS_LOG_ON, **PROXY_FIX, **RAISED_LIMITS}
    with (
        static_root_for_nginx() as site_root,
        running_gunicorn(f"sqlite:///{site_database}", tmp_path, settings) as server,
        deployed_nginx(server.port, site_root) as nginx,
    ):
        site = Site(port=nginx.port, app_port=server.port)
        filled, cached = site.get(ARTICLE), site.get(ARTICLE)
        static = site.get("/static/css/site.css")
        hostile = site.get(ARTICLE, x_request_id="../../etc/passwd")
        nginx.stop()
        nginx_lines = nginx.access_log_lines()
    assert (filled.cache_status, cached.cache_status) == ("MISS", "HIT")
    ids = [request_id_of(answer) for answer in (filled, cached, static, hostile)]
    assert len(set(ids)) == 4, ids
    for request_id in ids:
        logged = [line for line in nginx_lines if f" id={request_id} " in line]
        assert len(logged) == 1, (request_id, nginx_lines)
        assert logged[0].startswith("127.0.0.0 "), logged[0]
    assert not [line for line in nginx_lines if "127.0.0.1" in line]
    records = log_records(server)
    assert access_line(records, ids[0])["status"] == 200
    assert not lines_of(records, ids[1]), "a HIT reached the site"
    assert "../../etc/passwd" not in server.log_text()


@pytest.mark.slow
def test_an_operator_who_asks_for_text_gets_text_at_the_level_asked(
    site_database: Path, tmp_path: Path
):
    settings = {**ACCESS_LOG_ON, "FLASK_LOG_FORMAT": "text", "FLASK_LOG_LEVEL": "WARNING"}
    with running_gunicorn(f"sqlite:///{site_database}", tmp_path, settings) as server:
        page = direct(server).get(ARTICLE)
        refused = direct(server).choose("accept_all", sec_fetch_site="cross-site")
        forging = direct(server).get("/no-such-page%0Aforged%20line")
    assert (page.status, refused.status, forging.status) == (200, 403, 404)
    lines = server.log_text().splitlines()
    assert lines and not [line for line in lines if line.startswith("{")]
    assert not [line for line in lines if line.startswith("forged")]
    assert "/no-such-page\\nforged line 404" in server.log_text()
    page_lines = [line for line in lines if request_id_of(page) in line]
    assert len(page_lines) == 1
    assert f"GET {ARTICLE} 200 {len(page.body)}B" in page_lines[0]
    assert "gunicorn.access" in page_lines[0]
    refused_lines = [line for line in lines if request_id_of(refused) in line]
    assert len(refused_lines) == 1, "the refusal's INFO line is below the level asked"
    assert "POST /consent 403" in refused_lines[0]
