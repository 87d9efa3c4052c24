"""Choices that arrive together are committed together: one lock, one read of the head, one
insert and one commit for the whole group, and each answer only after its group committed.
A group that fails is answered 503 for every choice in it, and stores none of them.

The group is made certain by holding the chain's lock while the choices arrive, as a slow
commit would: every choice then waits in the queue and goes into the next batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from globalupdates.consent.proof.chain import WRITER, lock_chain
from globalupdates.consent.proof.verification import verify_chain
from globalupdates.database import one_writer
from globalupdates.extensions import db
from tests.support.consent import GPC, choose, records, stored_choice
from tests.support.pages import ARTICLE

READERS = 6
OUTAGE_MESSAGE = "cannot reach its database"


@contextmanager
def chain_held(app) -> Iterator[None]:
    """Hold the chain's lock as another worker's slow batch would, until the block ends."""
    with app.app_context():
        engine = db.engine
    with one_writer(engine), engine.connect() as connection:
        lock_chain(connection)
        yield
        connection.rollback()


def wait_until_queued(app, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(getattr(app.extensions.get(WRITER), "queued", ())) < count:
        assert time.monotonic() < deadline, "the choices never reached the chain's queue"
        time.sleep(0.01)


@contextmanager
def counted_writes(app) -> Iterator[dict[str, int]]:
    """Commits, and statements that insert consent records, on the app's engine."""
    seen = {"commits": 0, "record_inserts": 0}

    def on_commit(_conn) -> None:
        seen["commits"] += 1

    def on_statement(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CONSENT_RECORD"):
            seen["record_inserts"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_statement)


def at_once(count: int, send) -> tuple[list[threading.Thread], list]:
    """Start ``send(index)`` in ``count`` threads; the threads, and the list each fills in at
    its own index."""
    results: list = [None] * count

    def run(index: int) -> None:
        results[index] = send(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def finish(threads) -> None:
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


def a_choice(app, index: int):
    """A first choice of a new reader; every other one asks for JSON, as the script does."""
    client = app.test_client()
    headers = {"Accept": "application/json"} if index % 2 else {"Accept": "text/html"}
    response = choose(client, ("accept_all", "reject_all")[index % 2], headers=headers)
    return response, stored_choice(client)


def test_choices_made_at_once_are_committed_in_one_transaction(app):
    with counted_writes(app) as writes:
        with chain_held(app):
            threads, results = at_once(READERS, lambda index: a_choice(app, index))
            wait_until_queued(app, READERS)
        finish(threads)
    assert [response.status_code for response, _ in results] == [303, 200] * (READERS // 2)
    assert writes == {"commits": 1, "record_inserts": 1}
    stored = records(app)
    assert len(stored) == READERS
    assert {r.consent_id for r in stored} == {choice["id"] for _, choice in results}
    with app.app_context():
        report = verify_chain()
    assert report.intact and report.checked == READERS


class FailingCommit:
    """Fails the next commit as a full disk or a lost connection would, after the insert."""

    def __init__(self, app) -> None:
        with app.app_context():
            self.engine = db.engine

    def __enter__(self) -> FailingCommit:
        event.listen(self.engine, "commit", self.fail)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "commit", self.fail)

    @staticmethod
    def fail(_conn) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))


def test_a_batch_that_fails_answers_503_to_each_choice_in_it_and_stores_none(app):
    with FailingCommit(app):
        with chain_held(app):
            threads, results = at_once(READERS, lambda index: a_choice(app, index))
            wait_until_queued(app, READERS)
        finish(threads)
    for index, (response, choice) in enumerate(results):
        assert response.status_code == 503
        assert choice is None, "a choice that was not stored reached the session"
        if index % 2:
            assert "database" in response.get_json()["error"]
        else:
            assert OUTAGE_MESSAGE in response.get_data(as_text=True)
    assert records(app) == []
    response, choice = a_choice(app, 0)
    assert response.status_code == 303 and choice is not None
    assert len(records(app)) == 1


def test_a_fault_in_the_site_is_a_503_too_never_a_500(app, monkeypatch):
    from globalupdates.consent.proof import chain

    def broken_seal(*_args, **_kwargs):
        raise ValueError("a bug while signing")

    monkeypatch.setattr(chain, "seal_record", broken_seal)
    response, choice = a_choice(app, 0)
    assert response.status_code == 503 and choice is None
    assert records(app) == []


def test_gpc_replays_in_one_batch_record_one_opt_out(app, app_factory, client):
    """Every replay of one Accept All cookie with Sec-GPC: 1 arrives in the same batch: the
    first opt-out is recorded, the others see it earlier in the batch and are left out."""
    choose(client, "accept_all")
    consent_id = stored_choice(client)["id"]
    cookie = client.get_cookie("gu_session").value

    def replay(site) -> int:
        reader = site.test_client()
        reader.set_cookie("gu_session", cookie)
        return reader.get(ARTICLE, headers=GPC).status_code

    with chain_held(app):
        threads, statuses = at_once(READERS, lambda _index: replay(app))
        wait_until_queued(app, READERS)
    finish(threads)
    assert statuses == [200] * READERS
    assert replay(app_factory()) == 200  # another worker, which never saw the cookie
    actions = [(r.action, r.consent_id) for r in records(app)]
    assert actions == [("accept_all", consent_id), ("gpc_opt_out", consent_id)]
