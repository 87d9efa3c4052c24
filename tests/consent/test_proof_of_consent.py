"""Proof of consent: records chained by keyed hashes, and the operator's verify, checkpoint,
show, export and prune."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from globalupdates import create_app
from globalupdates.consent.proof.chain import append_to_chain
from globalupdates.consent.proof.next_signer import signing_key
from globalupdates.consent.proof.records import ChainAnchor, ConsentRecord
from globalupdates.consent.proof.seals import GENESIS_HASH, record_hash
from globalupdates.extensions import db
from tests.support.apps import app_config
from tests.support.consent import choose, records, stored_choice

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


def verify(runner, *args: str):
    return runner.invoke(args=["consent", "verify", *args])


def problems(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("PROBLEM: ")]


def the_signing_key(app):
    with app.app_context():
        return signing_key()


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
    key = the_signing_key(app)
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.prev_hash == before.hash
    assert all(r.key_id == key.key_id and record_hash(r, key) == r.hash for r in chain)


def test_a_record_holds_the_proof_and_no_personal_data(app, client):
    choose(client, "save", ("analytics",), headers={"X-Forwarded-For": "203.0.113.9"})
    [record] = records(app)
    assert set(record.as_export()) == {
        "id", "consent_id", "created_at", "action", "categories", "revision",
        "notice_hash", "gpc", "prev_hash", "key_id", "hash", "language", "regime", "services",
    }  # fmt: skip
    assert record.consent_id == stored_choice(client)["id"]
    assert record.language == "en"
    assert record.regime == "opt-in"
    assert record.notice_hash == app.extensions["consent"].registry.notice_hash_for("en")
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
    assert "PROBLEM" not in result.output


def test_verify_prints_the_head_the_count_and_where_the_chain_starts(app, runner, five_records):
    head = records(app)[-1]
    result = verify(runner)
    assert "Start: genesis\n" in result.output
    assert f"Head hash: {head.hash} (record 5)\n" in result.output
    assert "Records checked: 5\n" in result.output
    runner.invoke(args=["consent", "prune", "--before", "2026-01-03", "--yes"])
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert (
        "Start: anchor 1 (it pruned 2 record(s) made before 2026-01-03T00:00:00Z, up to record 2)\n"
    ) in result.output
    assert f"Head hash: {head.hash} (record 5)\n" in result.output
    assert "Records checked: 3\n" in result.output


def test_verify_names_an_altered_record(app, runner, five_records):
    sql(
        app, "UPDATE consent_record SET categories = :c WHERE id = 3", c='["necessary","analytics"]'
    )
    result = verify(runner)
    assert result.exit_code != 0
    assert "record 3 was altered" in result.output


def rehash_from(app, first_id: int, *, keyless: bool) -> None:
    """What a writer of the database can do without the proof key: alter record
    ``first_id``, then recompute the plain SHA-256 of it and of every record after it, so
    that every link matches again (and, if ``keyless``, claim they predate proof keys)."""
    with app.app_context():
        chain = db.session.scalars(db.select(ConsentRecord).order_by(ConsentRecord.id)).all()
        chain[first_id - 1].action = "accept_all"
        prev = chain[first_id - 2].hash if first_id > 1 else GENESIS_HASH
        for record in chain[first_id - 1 :]:
            if keyless:
                record.key_id = None
            record.prev_hash = prev
            record.hash = prev = record_hash(record, None)
        db.session.commit()


def test_a_record_altered_and_rehashed_fails_verification(app, runner, five_records):
    rehash_from(app, 2, keyless=False)
    result = verify(runner)
    assert result.exit_code != 0
    for record_id in (2, 3, 4, 5):
        assert f"record {record_id} was altered: its hash is not the HMAC" in result.output
    assert "record 1 was altered" not in result.output


def test_a_record_rehashed_as_if_made_before_proof_keys_fails_verification(
    app, runner, five_records
):
    rehash_from(app, 3, keyless=True)
    result = verify(runner)
    assert result.exit_code != 0
    assert "record 3: key_id is missing, yet record 2 before it is keyed" in result.output


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


def delete_oldest_and_write_anchor(app, *, key_id: str | None, mac: str | None) -> None:
    """What a writer of the database could do to hide the oldest records: delete them and
    write the anchor a prune would have left, with whatever key id and mac they can make."""
    with app.app_context():
        [tail_hash] = db.session.scalars(
            db.select(ConsentRecord.prev_hash).where(ConsentRecord.id == 3)
        )
        db.session.execute(db.delete(ConsentRecord).where(ConsentRecord.id <= 2))
        db.session.add(
            ChainAnchor(
                created_at=datetime(2026, 6, 1),
                pruned_before=datetime(2026, 1, 3),
                last_pruned_id=2,
                tail_hash=tail_hash,
                pruned_count=2,
                key_id=key_id,
                mac=mac,
            )
        )
        db.session.commit()


@pytest.mark.parametrize(
    ("key_id", "mac", "named"),
    [
        (None, None, "anchor 1: not signed by a proof key"),
        ("k1", "f" * 64, "anchor 1 was altered or written by hand"),
        ("k7", "f" * 64, "anchor 1: key_id 'k7' is not a known proof key"),
    ],
)
def test_oldest_records_replaced_by_a_written_anchor_fail_verification(
    app, runner, five_records, key_id, mac, named
):
    delete_oldest_and_write_anchor(app, key_id=key_id, mac=mac)
    result = verify(runner)
    assert result.exit_code != 0
    assert f"PROBLEM: {named}" in result.output
    assert "Start: anchor 1 (it pruned 2 record(s)" in result.output


def test_a_signed_anchor_moved_to_hide_more_records_fails_verification(app, runner, five_records):
    runner.invoke(args=["consent", "prune", "--before", "2026-01-02", "--yes"])
    with app.app_context():
        [tail_hash] = db.session.scalars(
            db.select(ConsentRecord.prev_hash).where(ConsentRecord.id == 3)
        )
    sql(app, "DELETE FROM consent_record WHERE id = 2")
    sql(app, "UPDATE consent_chain_anchor SET tail_hash = :h, last_pruned_id = 2", h=tail_hash)
    result = verify(runner)
    assert result.exit_code != 0
    assert "anchor 1 was altered or written by hand" in result.output


def test_verify_names_a_malformed_field_and_goes_on_to_the_end(app, runner, five_records):
    """On every database: JSON that is not a list of names, then a record altered later."""
    sql(app, "UPDATE consent_record SET categories = :c WHERE id = 2", c='{"necessary": 1}')
    sql(app, "UPDATE consent_record SET action = 'accept_all' WHERE id = 4")
    result = verify(runner)
    assert result.exit_code == 1
    [malformed, altered] = problems(result)
    assert malformed.startswith("PROBLEM: record 2: categories is not a list of category names (")
    assert altered.startswith("PROBLEM: record 4 was altered")
    assert "Records checked: 5" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def loose_sqlite_app(migrated_sqlite, tmp_path, monkeypatch):
    """An app on SQLite whichever databases this run covers: only SQLite's loosely typed
    columns can store a created_at of 'yesterday' or categories that are not JSON."""
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    path = tmp_path / "loose.sqlite3"
    shutil.copyfile(migrated_sqlite, path)
    app = create_app(app_config(f"sqlite:///{path}", tmp_path))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_verify_survives_fields_no_column_type_can_read(loose_sqlite_app):
    app, runner = loose_sqlite_app, loose_sqlite_app.test_cli_runner()
    for day in range(5):
        forge(app, when=datetime(2026, 1, 1 + day, tzinfo=UTC))
    sql(app, "UPDATE consent_record SET created_at = 'yesterday' WHERE id = 2")
    sql(app, "UPDATE consent_record SET categories = 'not json' WHERE id = 3")
    sql(app, "UPDATE consent_record SET gpc = 1 WHERE id = 5")
    result = verify(runner)
    assert result.exit_code == 1
    assert problems(result)[:2] == [
        "PROBLEM: record 2: created_at is not a date and time ('yesterday')",
        "PROBLEM: record 3: categories is not JSON ('not json')",
    ]
    assert problems(result)[2].startswith("PROBLEM: record 5 was altered")
    assert "Error: chain broken: 3 problem(s) found in 5 record(s) checked" in result.output
    assert "Traceback" not in result.output


def test_export_and_show_stop_clearly_at_an_unreadable_record(loose_sqlite_app):
    app, runner = loose_sqlite_app, loose_sqlite_app.test_cli_runner()
    reader = str(uuid.uuid4())
    forge(app, when=datetime(2026, 1, 1, tzinfo=UTC), consent_id=reader)
    sql(app, "UPDATE consent_record SET created_at = 'yesterday'")
    for args in (["export"], ["show", reader]):
        result = runner.invoke(args=["consent", *args])
        assert result.exit_code == 1
        assert "a record that cannot be read" in result.output
        assert "record 1: created_at is not a date and time ('yesterday')" in result.output


def checkpoint(runner, path) -> None:
    result = runner.invoke(args=["consent", "checkpoint", "--output", str(path)])
    assert result.exit_code == 0, result.output


def test_checkpoint_prints_the_head_as_one_json_line(app, runner, five_records):
    before = datetime.now(UTC)
    result = runner.invoke(args=["consent", "checkpoint"])
    assert result.exit_code == 0, result.output
    point = json.loads(result.output)
    assert point["record_id"] == 5 and point["count"] == 5
    assert point["hash"] == records(app)[-1].hash
    taken = datetime.fromisoformat(point["taken_at"].replace("Z", "+00:00"))
    assert before <= taken <= datetime.now(UTC)


def test_checkpoints_are_appended_to_the_file(app, runner, five_records, tmp_path):
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    forge(app, when=datetime(2026, 1, 9, tzinfo=UTC))
    checkpoint(runner, kept)
    assert [json.loads(line)["record_id"] for line in kept.read_text().splitlines()] == [5, 6]
    assert verify(runner, "--checkpoint", str(kept)).exit_code == 0


def test_removing_the_newest_records_fails_against_a_checkpoint(
    app, runner, five_records, tmp_path
):
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    forge(app, when=datetime(2026, 1, 9, tzinfo=UTC))
    sql(app, "DELETE FROM consent_record WHERE id >= 5")
    assert verify(runner).exit_code == 0, "the chain alone cannot show its end was cut"
    result = verify(runner, "--checkpoint", str(kept))
    assert result.exit_code == 1
    assert f"PROBLEM: checkpoint {kept} line 1 (record 5, taken " in result.output
    assert "record 5 is gone and no signed anchor says it was pruned" in result.output


def test_a_chain_rewritten_from_the_start_fails_against_a_checkpoint(
    app, runner, five_records, tmp_path
):
    """Rewriting every record as if made before proof keys fails plain verification (this
    site has no such records); where a site does and says so, a checkpoint catches it."""
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    rehash_from(app, 1, keyless=True)
    plain = verify(runner)
    assert plain.exit_code == 1
    assert "5 record(s) carry no proof key" in plain.output
    allowed = verify(runner, "--allow-unkeyed")
    assert "Not protected by a key: 5 record(s) made before proof keys" in allowed.output
    result = verify(runner, "--allow-unkeyed", "--checkpoint", str(kept))
    assert result.exit_code == 1
    assert "record 5 no longer has the hash the checkpoint kept" in result.output


def test_pruning_after_a_checkpoint_still_extends_it(app, runner, five_records, tmp_path):
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    runner.invoke(args=["consent", "prune", "--before", "2026-01-03", "--yes"])
    assert verify(runner, "--checkpoint", str(kept)).exit_code == 0
    runner.invoke(args=["consent", "prune", "--before", "2027-01-01", "--yes"])
    checkpoint(runner, kept)
    choose(app.test_client(), "accept_all")
    result = verify(runner, "--checkpoint", str(kept))
    assert result.exit_code == 0, result.output
    assert f"Checkpoints checked: 2, from {kept}" in result.output


def test_a_written_anchor_does_not_cover_a_checkpoint(app, runner, five_records, tmp_path):
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    head = records(app)[-1]
    sql(app, "DELETE FROM consent_record")
    sql(
        app,
        "INSERT INTO consent_chain_anchor (created_at, pruned_before, last_pruned_id, "
        "tail_hash, pruned_count, key_id, mac) VALUES (:t, :t, 5, :h, 5, NULL, NULL)",
        t=datetime(2026, 6, 1),
        h=head.hash,
    )
    result = verify(runner, "--checkpoint", str(kept))
    assert result.exit_code == 1
    assert "record 5 is gone and no signed anchor says it was pruned" in result.output


def test_verify_refuses_a_file_that_holds_no_checkpoint(app, runner, five_records, tmp_path):
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    with kept.open("a") as handle:
        handle.write("Chain intact: 5 record(s) verified.\n")
    result = verify(runner, "--checkpoint", str(kept))
    assert result.exit_code == 1
    assert f"cannot use the checkpoints in {kept}: line 2: not a checkpoint" in result.output
    assert "Records checked" not in result.output


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
        key = signing_key()
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
                key_id=key.key_id,
            )
            record.hash = prev = record_hash(record, key)
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
        assert anchor.key_id == signing_key().key_id and len(anchor.mac or "") == 64
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


def test_ids_go_on_growing_after_a_prune_of_every_record(app, runner, five_records, tmp_path):
    """A record id names one record for good, or a kept checkpoint could name another."""
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(runner, kept)
    runner.invoke(args=["consent", "prune", "--before", "2027-01-01", "--yes"])
    for day in range(6):
        forge(app, when=datetime(2027, 2, 1 + day, tzinfo=UTC))
    assert [record.id for record in records(app)] == [6, 7, 8, 9, 10, 11]
    result = verify(runner, "--checkpoint", str(kept))
    assert result.exit_code == 0, result.output


def test_prune_asks_before_deleting(app, runner, five_records):
    result = runner.invoke(args=["consent", "prune", "--before", "2026-01-03"], input="n\n")
    assert result.exit_code != 0
    assert len(records(app)) == 5
