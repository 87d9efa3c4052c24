"""Records and checkpoints someone with database or file access made hostile: each command
that reads them (verify, export, report, checkpoint) names the record, or the file's line,
and the field, and exits non-zero; verify goes on to the end and reports every one.

The values are stored with raw SQL, on SQLite and on PostgreSQL: each database keeps
different ones (SQLite keeps any text, PostgreSQL keeps timestamps Python cannot hold)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globalupdates.consent.proof.chain import append_to_chain
from globalupdates.consent.proof.checkpoints import CheckpointFileError, parse_checkpoint
from globalupdates.consent.proof.stored_rows import ANCHOR_FIELDS, RECORD_FIELDS, Malformed, shown
from globalupdates.extensions import db

RECORDS = 8
DEEP_BRACKETS = "[" * 50_000 + "]" * 50_000
DEEP_ARRAY = "[" * 3_000 + '"necessary"' + "]" * 3_000
SHALLOWER_ARRAY = "[" * 500 + "]" * 500

# (record id, column, SQL value, the start of the problem verify reports), per database.
HOSTILE = {
    "sqlite": [
        (2, "created_at", "'9999-12-31 23:59:59-01:00'", "created_at is a date and time out"),
        (3, "categories", f"'{DEEP_BRACKETS}'", "categories is JSON nested too deeply"),
        (4, "categories", f"'{DEEP_ARRAY}'", "categories is JSON nested too deeply"),
        (5, "action", "CAST(X'73617665ff' AS TEXT)", "action is not UTF-8 text"),
        (6, "created_at", "'10000-01-01 00:00:00'", "created_at is not a date and time"),
        (7, "consent_id", "CAST(X'c328' AS TEXT)", "consent_id is not UTF-8 text"),
    ],
    "postgresql": [
        (2, "created_at", "'10000-01-01 00:00:00'", "created_at is not a date and time"),
        (3, "created_at", "'infinity'", "created_at is not a date and time"),
        (4, "categories", f"'{DEEP_ARRAY}'", "categories is JSON nested too deeply"),
        (5, "created_at", "'-infinity'", "created_at is not a date and time"),
        # PostgreSQL refuses DEEP_BRACKETS itself (stack depth limit exceeded); an array
        # shallow enough for Python's parser is still no list of category names.
        (6, "categories", f"'{SHALLOWER_ARRAY}'", "categories is not a list of category"),
    ],
}


def backend(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


def forge_records(app) -> None:
    with app.app_context():
        for day in range(RECORDS):
            append_to_chain(
                consent_id=str(uuid.uuid4()),
                created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day),
                action="save",
                categories=["necessary"],
                revision=1,
                notice_hash="a" * 64,
                gpc=False,
            )


def store_hostile(app, record_id: int, column: str, value: str) -> None:
    with app.app_context():
        db.session.execute(
            db.text(f"UPDATE consent_record SET {column} = {value} WHERE id = :id"),
            {"id": record_id},
        )
        db.session.commit()


def hostile_cases(app) -> list[tuple[int, str, str, str]]:
    return HOSTILE[backend(app)]


def problems(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("PROBLEM: ")]


def test_verify_names_every_hostile_record_and_goes_on_to_the_end(app_factory):
    app = app_factory()
    forge_records(app)
    cases = hostile_cases(app)
    for record_id, column, value, _ in cases:
        store_hostile(app, record_id, column, value)
    result = app.test_cli_runner().invoke(args=["consent", "verify"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    found = problems(result)
    for record_id, _, _, complaint in cases:
        assert any(
            line.startswith(f"PROBLEM: record {record_id}: {complaint}") for line in found
        ), (
            record_id,
            found,
        )
    assert len(found) == len(cases), found
    assert f"Records checked: {RECORDS}" in result.output


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_stops_at_a_hostile_record_naming_it_and_the_field(app_factory, index, fmt):
    app = app_factory()
    forge_records(app)
    record_id, column, value, complaint = hostile_cases(app)[index]
    store_hostile(app, record_id, column, value)
    result = app.test_cli_runner().invoke(args=["consent", "export", "--format", fmt])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"a record that cannot be read: record {record_id}: {complaint}" in result.output


def test_report_names_every_hostile_record_and_fails(app_factory, tmp_path):
    app = app_factory()
    forge_records(app)
    cases = hostile_cases(app)
    for record_id, column, value, _ in cases:
        store_hostile(app, record_id, column, value)
    page = tmp_path / "report.html"
    result = app.test_cli_runner().invoke(args=["consent", "report", "--output", str(page)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "did NOT verify" in result.output
    html = page.read_text()
    for record_id, _, _, complaint in cases:
        assert f"record {record_id}: {complaint}" in html


def test_a_checkpoint_reads_only_the_head_and_names_it_when_unreadable(app_factory):
    """A checkpoint reads the newest record's id and hash and the count: the hostile fields
    of older records do not stop it. Only SQLite can store a hash that is not UTF-8."""
    app = app_factory()
    forge_records(app)
    for record_id, column, value, _ in hostile_cases(app):
        store_hostile(app, record_id, column, value)
    runner = app.test_cli_runner()
    taken = runner.invoke(args=["consent", "checkpoint"])
    assert taken.exit_code == 0, taken.output
    assert json.loads(taken.output)["record_id"] == RECORDS
    if backend(app) == "sqlite":
        store_hostile(app, RECORDS, "hash", "CAST(X'ff' AS TEXT)")
        result = runner.invoke(args=["consent", "checkpoint"])
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert f"record {RECORDS}: hash is not UTF-8 text" in result.output


NOT_A_CHECKPOINT = [
    ("nested", b'{"record_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested too deeply"),
    (
        "too large",
        b'{"record_id": 100000000000000000000000, "hash": "x", "count": 1, "taken_at": "t"}\n',
        "record_id 100000000000000000000000 is out of range",
    ),
    ("not UTF-8", b'{"record_id": 1, "hash": "\xff"}\n', "it is not UTF-8 text"),
    ("a list", b"[1, 2]\n", "it is not a JSON object"),
    ("no hash", b'{"record_id": 1, "count": 1, "taken_at": "t"}\n', "it has no hash"),
    (
        "a float",
        b'{"record_id": 1e23, "hash": "x", "count": 1, "taken_at": "t"}\n',
        "record_id is not a whole number",
    ),
]


@pytest.mark.parametrize(("line", "complaint"), [case[1:] for case in NOT_A_CHECKPOINT])
def test_verify_names_the_line_of_a_hostile_checkpoint_file(app_factory, tmp_path, line, complaint):
    app = app_factory()
    forge_records(app)
    kept = tmp_path / "checkpoints.jsonl"
    runner = app.test_cli_runner()
    runner.invoke(args=["consent", "checkpoint", "--output", str(kept)])
    with kept.open("ab") as handle:
        handle.write(line)
    result = runner.invoke(args=["consent", "verify", "--checkpoint", str(kept)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"cannot use the checkpoints in {kept}: line 2: " in result.output
    assert complaint in result.output


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_line_is_a_checkpoint_or_a_named_error(line):
    try:
        checkpoint = parse_checkpoint(line)
    except CheckpointFileError as error:
        assert str(error).startswith("not a checkpoint written by `flask consent checkpoint`")
    else:
        assert 0 <= checkpoint.record_id < 2**63 and 0 <= checkpoint.count < 2**63


STORED_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.sampled_from(["9999-12-31 23:59:59-01:00", "0001-01-01 00:00:00+01:00", "infinity"]),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.sampled_from(sorted({**RECORD_FIELDS, **ANCHOR_FIELDS}.items())), STORED_VALUES)
def test_any_stored_value_is_read_or_named(field, value):
    name, parse = field
    try:
        parse(value)
    except Malformed as error:
        assert str(error).startswith("is ")
    assert shown(value)
