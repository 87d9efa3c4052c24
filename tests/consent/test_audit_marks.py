"""The cookie audit's own choices: real records of the chain, marked by `X-Consent-Audit: 1`
from an allowed address, and left out of `consent stats`, the report and the choice metrics.
The same header from any other address changes nothing."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from globalupdates.consent.proof.records import AuditReader, ConsentRecord
from globalupdates.extensions import db
from tests.support.consent import choose

AUDIT = {"X-Consent-Audit": "1"}
ELSEWHERE = "192.0.2.7"


def metric(client, name: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if sample.name == name
    )


def audit_choice(client, action: str, *categories: str, address: str | None = None):
    if address is not None:
        client.environ_base["REMOTE_ADDR"] = address
    response = choose(client, action, categories, headers=AUDIT)
    assert response.status_code == 303
    return response


def stats_total(runner) -> dict:
    result = runner.invoke(args=["consent", "stats", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["groups"][0]


def record_and_mark_counts(app) -> tuple[int, int]:
    with app.app_context():
        records = db.session.scalar(select(func.count()).select_from(ConsentRecord))
        marks = db.session.scalar(select(func.count()).select_from(AuditReader))
    return int(records or 0), int(marks or 0)


def test_audit_choices_are_recorded_but_left_out_of_stats_report_and_metrics(app, runner, tmp_path):
    client = app.test_client()
    choices_before = metric(client, "globalupdates_choices_total")
    audits_before = metric(client, "globalupdates_audit_choices_total")
    choose(app.test_client(), "reject_all")
    audit_choice(app.test_client(), "accept_all")
    audit_choice(app.test_client(), "save", "analytics")
    assert record_and_mark_counts(app) == (3, 2)
    total = stats_total(runner)
    assert (total["choices"], total["accept_all"], total["reject_all"]) == (1, 0, 1)
    assert total["analytics_opt_ins"] == 0
    assert metric(client, "globalupdates_choices_total") - choices_before == 1
    assert metric(client, "globalupdates_audit_choices_total") - audits_before == 2
    report = tmp_path / "report.html"
    result = runner.invoke(args=["consent", "report", "-o", str(report)])
    assert result.exit_code == 0, result.output
    verified = runner.invoke(args=["consent", "verify"])
    assert verified.exit_code == 0, verified.output
    assert '<th scope="row">all</th><td>1</td>' in report.read_text("utf-8")


def test_a_reader_whose_later_choice_is_the_audits_is_marked_once(app, runner):
    reader = app.test_client()
    audit_choice(reader, "accept_all")
    audit_choice(reader, "reject_all")
    assert record_and_mark_counts(app) == (2, 1)
    assert stats_total(runner)["choices"] == 0


def test_the_audit_header_from_another_address_is_ignored_and_logged(app, runner, caplog):
    caplog.set_level(logging.WARNING)
    client = app.test_client()
    choices_before = metric(client, "globalupdates_choices_total")
    audits_before = metric(client, "globalupdates_audit_choices_total")
    audit_choice(app.test_client(), "accept_all", address=ELSEWHERE)
    assert record_and_mark_counts(app) == (1, 0)
    assert stats_total(runner)["accept_all"] == 1
    assert metric(client, "globalupdates_choices_total") - choices_before == 1
    assert metric(client, "globalupdates_audit_choices_total") == audits_before
    assert "X-Consent-Audit ignored" in caplog.text
    assert ELSEWHERE not in caplog.text, "the log names a network, never a whole address"


def test_audit_header_with_another_value_marks_nothing(app):
    response = choose(app.test_client(), "accept_all", headers={"X-Consent-Audit": "yes"})
    assert response.status_code == 303
    assert record_and_mark_counts(app) == (1, 0)


def test_pruning_a_marked_readers_last_record_drops_its_mark(app, runner):
    audit_choice(app.test_client(), "accept_all")
    kept = app.test_client()
    audit_choice(kept, "reject_all")
    with app.app_context():
        newest = db.session.scalar(select(func.max(ConsentRecord.created_at)))
    before = newest.isoformat() + "Z"
    result = runner.invoke(args=["consent", "prune", "--before", before, "--yes"])
    assert result.exit_code == 0, result.output
    assert record_and_mark_counts(app) == (1, 1)
    assert stats_total(runner)["choices"] == 0, "the reader kept is still the audit's"
