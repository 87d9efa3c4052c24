"""Proof of consent: hash-chained records, and the operator's verify/show/export/prune."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from consent_support import records, stored_choice

from conftest import choose
from globalupdates.consent.chain import GENESIS_HASH, append_to_chain, record_hash
from globalupdates.consent.records import ChainAnchor, ConsentRecord
from globalupdates.extensions import db

NOTICE = "a" * 64


def forge(app, *, when: datetime, action: str = "save", consent_id: str | None = None) -> None:
    """Append a record as if it had been made at ``when``."""
    with app.app_context():
        append_to_chain(
            consent_id=consent_id or str(uuid.uuid4()),
            created_at=when,
            action=action,
            categories=["necessary"],
            revision=1,
            notice_hash=NOTICE,
            gpc=False,
        )


def sql(app, statement, **params) -> None:
    with app.app_context():
        db.session.execute(db.text(statement), params)
        db.session.commit()


def verify(runner):
    return runner.invoke(args=["consent", "verify"])


@pytest.fixture
def five_records(app):
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for day in range(5):
        forge(app, when=start + timedelta(days=day))
    return start


def test_each_record_links_to_the_one_before(app):
    reader = app.test_client()
    choose(reader, "accept_all")
    choose(reader, "save", ("functional",))
    choose(app.test_client(), "reject_all")
    chain = records(app)
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.prev_hash == before.hash
    assert all(record_hash(r) == r.hash for r in chain)


def test_a_record_holds_the_proof_and_no_personal_data(app, client):
    choose(client, "save", ("analytics",), headers={"X-Forwarded-For": "203.0.113.9"})
    [record] = records(app)
    assert set(record.as_export()) == {
        "id", "consent_id", "created_at", "action", "categories", "revision",
        "notice_hash", "gpc", "prev_hash", "hash",
    }  # fmt: skip
    assert record.consent_id == stored_choice(client)["id"]
    assert record.notice_hash == app.extensions["consent"].registry.notice_hash
    assert "127.0.0.1" not in json.dumps(record.as_export())
    columns = set(ConsentRecord.__table__.columns.keys())
    assert not {"ip", "address", "remote_addr", "user_agent"} & columns


def test_save_or_reject_that_takes_back_a_grant_is_a_withdrawal(app):
    reader = app.test_client()
    choose(reader, "save", ("functional", "analytics"))
    choose(reader, "save", ("functional", "analytics", "performance"))
    choose(reader, "save", ("functional",))
    choose(reader, "reject_all")
    choose(reader, "reject_all")
    fresh = app.test_client()
    choose(fresh, "reject_all")
    assert [r.action for r in records(app)] == [
        "save", "save", "withdrawal", "withdrawal", "reject_all", "reject_all",
    ]  # fmt: skip


def test_verify_passes_on_an_untouched_chain(app, runner, five_records):
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "5 record(s) verified" in result.output


def test_verify_names_an_altered_record(app, runner, five_records):
    sql(
        app, "UPDATE consent_record SET categories = :c WHERE id = 3", c='["necessary","analytics"]'
    )
    result = verify(runner)
    assert result.exit_code != 0
    assert "record 3 was altered" in result.output


def test_verify_names_a_record_altered_and_rehashed(app, runner, five_records):
    with app.app_context():
        record = db.session.get(ConsentRecord, 2)
        record.action = "accept_all"
        record.hash = record_hash(record)
        db.session.commit()
    result = verify(runner)
    assert result.exit_code != 0
    assert "record 2 was altered and re-hashed" in result.output


def test_verify_names_a_removed_record(app, runner, five_records):
    sql(app, "DELETE FROM consent_record WHERE id = 4")
    result = verify(runner)
    assert result.exit_code != 0
    assert "record 4 was removed" in result.output


def test_verify_notices_removed_oldest_records(app, runner, five_records):
    sql(app, "DELETE FROM consent_record WHERE id <= 2")
    result = verify(runner)
    assert result.exit_code != 0
    assert "before record 3 were removed" in result.output


def test_show_prints_one_readers_history(app, runner):
    reader = app.test_client()
    choose(reader, "accept_all")
    choose(reader, "reject_all")
    choose(app.test_client(), "accept_all")
    consent_id = stored_choice(reader)["id"]
    result = runner.invoke(args=["consent", "show", consent_id])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "accept_all" in lines[0] and "withdrawal" in lines[1]
    assert "necessary, functional, analytics" in lines[0]


def test_show_refuses_an_unknown_or_malformed_id(runner):
    unknown = runner.invoke(args=["consent", "show", str(uuid.uuid4())])
    assert unknown.exit_code != 0 and "no consent records" in unknown.output
    malformed = runner.invoke(args=["consent", "show", "not-an-id"])
    assert malformed.exit_code == 2 and "consent id" in malformed.output


def test_export_json_lines_and_csv_between_dates(app, runner, five_records):
    args = ["--since", "2026-01-02", "--until", "2026-01-04T12:00:00Z"]
    lines = runner.invoke(args=["consent", "export", *args]).output.splitlines()
    days = [json.loads(line)["created_at"][:10] for line in lines]
    assert days == ["2026-01-02", "2026-01-03"]
    table = runner.invoke(args=["consent", "export", "--format", "csv", *args]).output
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [row["created_at"][:10] for row in rows] == days
    assert rows[0]["categories"] == "necessary" and rows[0]["gpc"] == "false"
    assert rows[1]["prev_hash"] == rows[0]["hash"]


def test_export_refuses_a_bad_date(runner):
    result = runner.invoke(args=["consent", "export", "--since", "last tuesday"])
    assert result.exit_code == 2 and "is not a date" in result.output


def bulk_records(app, count: int) -> None:
    """Many chained records inserted at once, the way the chain itself would link them."""
    with app.app_context():
        prev = db.session.scalar(
            db.select(ConsentRecord.hash).order_by(ConsentRecord.id.desc()).limit(1)
        )
        prev = prev or GENESIS_HASH
        start = datetime(2026, 2, 1)
        for index in range(count):
            record = ConsentRecord(
                consent_id=str(uuid.uuid4()),
                created_at=start + timedelta(seconds=index),
                action="save",
                categories=["necessary", "analytics"],
                revision=1,
                notice_hash=NOTICE,
                gpc=False,
                prev_hash=prev,
            )
            record.hash = prev = record_hash(record)
            db.session.add(record)
        db.session.commit()


def export_peak(runner, tmp_path, fmt: str) -> tuple[int, int]:
    """Peak traced memory of one export to a file, and the size of that file."""
    target = tmp_path / f"export.{fmt}"
    tracemalloc.start()
    try:
        result = runner.invoke(args=["consent", "export", "--format", fmt, "-o", str(target)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    return peak, target.stat().st_size


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_streams_in_constant_memory(app, runner, tmp_path, fmt):
    bulk_records(app, 1000)
    export_peak(runner, tmp_path, fmt)  # first run pays for imports and compiled queries
    small_peak, small_size = export_peak(runner, tmp_path, fmt)
    bulk_records(app, 6000)
    large_peak, large_size = export_peak(runner, tmp_path, fmt)
    assert large_size > small_size + 1_500_000
    assert large_peak < small_peak + 400_000, (small_peak, large_peak)
    assert verify(runner).exit_code == 0


def test_prune_deletes_old_records_and_the_chain_still_verifies(app, runner, five_records):
    result = runner.invoke(args=["consent", "prune", "--before", "2026-01-03", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Pruned 2 record(s)" in result.output
    kept = records(app)
    assert [r.created_at.day for r in kept] == [3, 4, 5]
    with app.app_context():
        [anchor] = db.session.scalars(db.select(ChainAnchor)).all()
        assert anchor.tail_hash == kept[0].prev_hash and anchor.last_pruned_id == 2
    assert anchor.tail_hash in result.output
    assert verify(runner).exit_code == 0
    choose(app.test_client(), "reject_all")
    checked = verify(runner)
    assert checked.exit_code == 0 and "4 record(s) verified" in checked.output
    sql(app, "DELETE FROM consent_record WHERE id = 3")
    assert verify(runner).exit_code != 0


def test_prune_of_every_record_leaves_an_anchor_the_next_record_links_to(app, runner, five_records):
    runner.invoke(args=["consent", "prune", "--before", "2027-01-01", "--yes"])
    assert records(app) == []
    choose(app.test_client(), "accept_all")
    assert verify(runner).exit_code == 0
    assert records(app)[0].prev_hash != GENESIS_HASH


def test_prune_asks_before_deleting(app, runner, five_records):
    result = runner.invoke(args=["consent", "prune", "--before", "2026-01-03"], input="n\n")
    assert result.exit_code != 0
    assert len(records(app)) == 5
