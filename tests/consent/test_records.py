"""Proof of consent: one record per choice, exported by the operator as JSON Lines."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

from tests.support.consent import BUILTIN_REVISION, choose


def export(runner, *args: str) -> list[dict]:
    result = runner.invoke(args=["consent", "export", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line]


def test_export_writes_one_json_line_per_choice(app, runner):
    reader = app.test_client()
    started = datetime.now(UTC) - timedelta(seconds=1)
    choose(reader, "accept_all")
    choose(reader, "save", ("analytics",))
    choose(app.test_client(), "reject_all")
    lines = export(runner)
    # The save took analytics back from an accept-all, so it is recorded as a withdrawal.
    assert [line["action"] for line in lines] == ["accept_all", "withdrawal", "reject_all"]
    assert lines[1]["categories"] == ["necessary", "analytics"]
    assert lines[2]["categories"] == ["necessary"]
    assert lines[0]["consent_id"] == lines[1]["consent_id"] != lines[2]["consent_id"]
    for line in lines:
        assert line["revision"] == BUILTIN_REVISION
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", line["created_at"])
        made = datetime.fromisoformat(line["created_at"].replace("Z", "+00:00"))
        assert started <= made <= datetime.now(UTC)
        assert len(line["notice_hash"]) == 64


def test_export_to_a_file(app, runner, tmp_path):
    choose(app.test_client(), "reject_all")
    target = tmp_path / "records.jsonl"
    result = runner.invoke(args=["consent", "export", "--output", str(target)])
    assert result.exit_code == 0
    [line] = target.read_text().splitlines()
    assert json.loads(line)["action"] == "reject_all"


def test_the_reader_sees_their_consent_id(app):
    reader = app.test_client()
    choose(reader, "reject_all")
    html = reader.get("/consent").get_data(as_text=True)
    with reader.session_transaction() as session:
        assert f"<code>{session['consent']['id']}</code>" in html


def test_export_names_the_key_that_signed_each_record(app, runner):
    choose(app.test_client(), "accept_all")
    [line] = export(runner)
    assert line["key_id"] == "k1"
    table = runner.invoke(args=["consent", "export", "--format", "csv"]).output
    [row] = csv.DictReader(io.StringIO(table))
    assert row["key_id"] == "k1"
