"""Many readers at once, each on its own kept-alive connection, choosing and counting views.

Every reader first fetches the preferences page, accepts all and then alternates between
another consent choice and a page-view beacon. Each keeps its own tally of what was sent
and what the site accepted, and knows its consent id and reader id, so the test can hold
the database to exactly one record per accepted request.
"""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from tests.support.consent import SAME_ORIGIN, cookie_value
from tests.support.html import ACCEPT_ALL_BUTTON, select
from tests.support.pages import ARTICLE

ACCEPTED = {200, 201, 204, 303}
DELIBERATE_REFUSAL = 429


def session_reader(secret_key: str) -> URLSafeTimedSerializer:
    """The serializer the site signs its session cookie with.

    Made once, before the readers' threads start: making a Flask app compiles its URL rules,
    and Python 3.11's compiler is not safe to run from many threads at once."""
    app = Flask(__name__)
    app.secret_key = secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return serializer


def consent_id_in(cookie: str, serializer: URLSafeTimedSerializer) -> str:
    """Read the consent id from a session cookie, as the site itself would."""
    return str(serializer.loads(cookie)["consent"]["id"])


@dataclass
class Tally:
    sent: int = 0
    accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)  # time.monotonic() of each


class Reader:
    def __init__(self, port: int, sessions: URLSafeTimedSerializer) -> None:
        self.port = port
        self.sessions = sessions
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""
        self.reader_id = secrets.token_hex(16)
        self.consent_id: str | None = None
        self.consents = Tally()
        self.views = Tally()

    def send(self, tally: Tally | None, method: str, path: str, body: str = "", headers=None):
        """One request on the kept-alive connection; ``None`` when no answer came back."""
        all_headers = {"Cookie": f"gu_session={self.cookie}; gu_reader={self.reader_id}"}
        all_headers.update(headers or {})
        if tally is not None:
            tally.sent += 1
        try:
            self.conn.request(method, path, body=body or None, headers=all_headers)
            response = self.conn.getresponse()
            text = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            self.conn.close()
            if tally is not None:
                tally.failures.append(f"{method} {path}: {error!r}")
            return None, ""
        new_cookie = cookie_value(response.headers.get_all("Set-Cookie") or [])
        if new_cookie and response.status in ACCEPTED:
            self.cookie = new_cookie
        if tally is not None:
            tally.statuses[response.status] += 1
            if response.status in ACCEPTED:
                tally.accepted += 1
                tally.accepted_at.append(time.monotonic())
        return response.status, text

    def open_preferences(self) -> None:
        status, html = self.send(None, "GET", "/consent")
        assert status == 200, f"the preferences page answered {status}"
        assert select(html, ACCEPT_ALL_BUTTON), "the preferences page offers no Accept All"

    def choose(self) -> None:
        body = urlencode({"action": "accept_all", "next": ARTICLE})
        headers = {"Content-Type": "application/x-www-form-urlencoded", **SAME_ORIGIN}
        status, _ = self.send(self.consents, "POST", "/consent", body, headers)
        if status == 303 and self.consent_id is None:
            self.consent_id = consent_id_in(self.cookie, self.sessions)

    def count_view(self) -> None:
        headers = {"Content-Type": "application/json", **SAME_ORIGIN}
        self.send(self.views, "POST", "/features/pageview", json.dumps({"path": ARTICLE}), headers)

    def run(self, rounds: int, progress: Callable[[], None]) -> None:
        try:
            self.open_preferences()
            self.choose()
            for _ in range(rounds):
                self.choose()
                if self.consent_id is not None:
                    self.count_view()
                progress()
        finally:
            self.conn.close()


@dataclass
class LoadResult:
    readers: list[Reader]

    def total(self, kind: str, attribute: str) -> int:
        return sum(getattr(getattr(reader, kind), attribute) for reader in self.readers)

    def statuses(self) -> Counter[int]:
        counts: Counter[int] = Counter()
        for reader in self.readers:
            counts += reader.consents.statuses + reader.views.statuses
        return counts

    def failures(self) -> list[str]:
        return [f for r in self.readers for f in r.consents.failures + r.views.failures]

    def accepted_consents_by_id(self) -> dict[str, int]:
        return {r.consent_id: r.consents.accepted for r in self.readers if r.consent_id}

    def accepted_views_by_reader(self) -> dict[str, int]:
        return {r.reader_id: r.views.accepted for r in self.readers if r.views.accepted}


def run_load(
    port: int,
    secret_key: str,
    readers: int,
    rounds: int,
    midway: Callable[[], None] | None = None,
) -> LoadResult:
    """Run ``readers`` concurrent readers for ``rounds`` rounds; call ``midway`` halfway."""
    sessions = session_reader(secret_key)
    crowd = [Reader(port, sessions) for _ in range(readers)]
    halfway = threading.Event()
    lock = threading.Lock()
    done = [0]
    target = readers * rounds // 2

    def progress() -> None:
        with lock:
            done[0] += 1
            if done[0] >= target:
                halfway.set()

    errors: list[BaseException] = []

    def run_reader(reader: Reader) -> None:
        try:
            reader.run(rounds, progress)
        except BaseException as error:  # reported by the test, never swallowed
            errors.append(error)
            halfway.set()

    threads = [threading.Thread(target=run_reader, args=(reader,)) for reader in crowd]
    for thread in threads:
        thread.start()
    if midway is not None:
        halfway.wait(timeout=60)
        midway()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a reader never finished"
    if errors:
        raise errors[0]
    return LoadResult(crowd)
