"""Global Privacy Control against a real server: many requests replaying one stored choice
with ``Sec-GPC: 1`` at the same moment, spread over gunicorn's workers and threads, record
the opt-out once. The "already recorded?" check runs inside the chain's lock."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, text

from tests.support.consent import SAME_ORIGIN, cookie_value
from tests.support.gunicorn_server import SECRET_KEY, Server, running_gunicorn
from tests.support.load_client import consent_id_in, session_reader
from tests.support.pages import ARTICLE

SESSIONS = session_reader(SECRET_KEY)

REPLAYS = 24
READERS = 3  # each a fresh choice replayed at once: the race gets three chances to show
SERVER_SETTINGS = {
    "WEB_CONCURRENCY": "3",
    "GUNICORN_THREADS": "4",
    "FLASK_RATELIMIT_CONSENT_PER_ADDRESS": "100000 per minute",
}


def accept_all(server: Server) -> str:
    """A new reader's Accept All, made without GPC; the session cookie it got."""
    connection = server.connection(timeout=30)
    try:
        body = urlencode({"action": "accept_all"})
        headers = {"Content-Type": "application/x-www-form-urlencoded", **SAME_ORIGIN}
        connection.request("POST", "/consent", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 303
        cookie = cookie_value(response.headers.get_all("Set-Cookie") or [])
    finally:
        connection.close()
    assert cookie
    return cookie


def replay_at_once(server: Server, cookie: str) -> list[int]:
    """``REPLAYS`` GETs of an article with the cookie and ``Sec-GPC: 1``, each on a connection
    of its own opened beforehand, sent the same moment."""
    connections = [server.connection(timeout=60) for _ in range(REPLAYS)]
    for connection in connections:
        connection.connect()
    start = threading.Barrier(REPLAYS)
    statuses: list[int] = [0] * REPLAYS

    def replay(index: int) -> None:
        start.wait()
        connections[index].request(
            "GET", ARTICLE, headers={"Cookie": f"gu_session={cookie}", "Sec-GPC": "1"}
        )
        response = connections[index].getresponse()
        response.read()
        statuses[index] = response.status

    threads = [threading.Thread(target=replay, args=(index,)) for index in range(REPLAYS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for connection in connections:
        connection.close()
    return statuses


def opt_outs_by_reader(database_uri: str) -> dict[str, int]:
    engine = create_engine(database_uri)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT consent_id, COUNT(*) FROM consent_record "
                    "WHERE action = 'gpc_opt_out' GROUP BY consent_id"
                )
            )
            return {consent_id: count for consent_id, count in rows}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_simultaneous_gpc_replays_of_one_choice_record_one_opt_out(database_uri, tmp_path):
    with running_gunicorn(database_uri, tmp_path, SERVER_SETTINGS) as server:
        server.wait_for_workers(3)
        readers = []
        for _ in range(READERS):
            cookie = accept_all(server)
            assert replay_at_once(server, cookie) == [200] * REPLAYS
            readers.append(consent_id_in(cookie, SESSIONS))
        assert "Traceback" not in server.log_text()
    assert opt_outs_by_reader(database_uri) == {consent_id: 1 for consent_id in readers}
