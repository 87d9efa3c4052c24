"""The proof of a choice names the regime it was made under (opt-in, opt-out), never the
place: signed in the chain, older records verifying as before, and counted by every
operator's view of the records (stats, report, metrics)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from globalupdates.consent.proof.next_signer import signing_key
from tests.consent.test_notice_language_proof import cli, old_record, sql
from tests.serving.test_metrics import grew, scrape
from tests.support.consent import GPC, choose, records, signed_form

EDGE = {"COUNTRY_HEADER": "X-Country", "REGION_HEADER": "X-Region", "PROXY_FIX_X_FOR": 1}
CALIFORNIA = {"X-Country": "US", "X-Region": "CA"}
GERMANY = {"X-Country": "DE"}


@pytest.fixture
def edge_app(app_factory):
    return app_factory(**EDGE)


def choose_at(app, place: dict[str, str], action: str, categories: tuple[str, ...] = ()):
    client = app.test_client()
    assert choose(client, action, categories, headers=place).status_code == 303
    return client


def test_a_record_names_the_regime_never_the_place(edge_app):
    choose_at(edge_app, CALIFORNIA, "reject_all")
    choose_at(edge_app, GERMANY, "accept_all")
    choose_at(edge_app, {}, "accept_all")
    assert [record.regime for record in records(edge_app)] == ["opt-out", "opt-in", "opt-in"]
    exported = cli(edge_app, "export").output
    assert '"US"' not in exported and '"CA"' not in exported and '"DE"' not in exported


def test_a_gpc_opt_out_names_the_regime_it_was_applied_under(edge_app):
    reader = choose_at(edge_app, CALIFORNIA, "save", ("analytics",))
    reader.get("/", headers={**CALIFORNIA, **GPC})
    assert [(r.action, r.regime) for r in records(edge_app)] == [
        ("save", "opt-out"),
        ("gpc_opt_out", "opt-out"),
    ]


def test_the_regime_is_signed_so_changing_it_breaks_verification(edge_app):
    choose_at(edge_app, CALIFORNIA, "reject_all")
    choose_at(edge_app, GERMANY, "reject_all")
    assert cli(edge_app, "verify").exit_code == 0
    sql(edge_app, "UPDATE consent_record SET regime = 'opt-in' WHERE id = 1")
    result = cli(edge_app, "verify")
    assert result.exit_code == 1
    assert "record 1 was altered" in result.output
    sql(edge_app, "UPDATE consent_record SET regime = NULL WHERE id = 1")
    assert "record 1 was altered" in cli(edge_app, "verify").output
    assert "PROBLEM: record 2" not in cli(edge_app, "verify").output


def test_a_record_made_before_regions_verifies_as_before(edge_app):
    old_record(edge_app)
    choose_at(edge_app, CALIFORNIA, "accept_all")
    [old, new] = records(edge_app)
    assert old.regime is None and new.regime == "opt-out"
    with edge_app.app_context():
        key = signing_key()
    old_form = signed_form(old)
    assert b'"regime"' not in old_form
    assert old.hash == key.mac(old_form)
    new_form = signed_form(new, language="en", regime="opt-out", services=new.services)
    assert new.services, "Accept All grants every service"
    assert new.hash == key.mac(new_form)
    result = cli(edge_app, "verify")
    assert result.exit_code == 0, result.output
    assert "Consent regimes: opt-out 1, not recorded 1\n" in result.output


def test_stats_and_the_report_break_the_figures_down_by_regime(edge_app):
    old_record(edge_app)
    for place, action in [
        (CALIFORNIA, "accept_all"),
        (CALIFORNIA, "reject_all"),
        (CALIFORNIA, "reject_all"),
        (GERMANY, "accept_all"),
    ]:
        choose_at(edge_app, place, action)
    document = json.loads(cli(edge_app, "stats", "--format", "json").output)
    regimes = {row["key"]: row for row in document["groups"] if row["group"] == "regime"}
    assert list(regimes) == ["not_recorded", "opt-in", "opt-out"]
    assert regimes["opt-out"]["choices"] == 3 and regimes["opt-out"]["reject_all"] == 2
    assert regimes["opt-in"]["choices"] == 1 and regimes["opt-in"]["accept_all"] == 1
    assert regimes["not_recorded"]["choices"] == 1
    rows = list(csv.DictReader(io.StringIO(cli(edge_app, "stats", "--format", "csv").output)))
    assert {row["key"]: row["choices"] for row in rows if row["group"] == "regime"} == {
        "not_recorded": "1",
        "opt-in": "1",
        "opt-out": "3",
    }
    table = cli(edge_app, "stats").output
    assert any(line.startswith("regime opt-out") for line in table.splitlines()), table
    report = cli(edge_app, "report").output
    assert '<th scope="row">regime opt-out</th><td>3</td>' in report


def test_metrics_count_the_choices_by_regime(edge_app):
    metrics = edge_app.test_client()
    before = scrape(metrics)
    reader = choose_at(edge_app, CALIFORNIA, "save", ("analytics",))
    reader.get("/", headers={**CALIFORNIA, **GPC})
    choose_at(edge_app, GERMANY, "accept_all")
    after = scrape(metrics)
    name = "globalupdates_choices_by_regime_total"
    assert grew(before, after, name, action="custom", regime="opt-out") == 1
    assert grew(before, after, name, action="gpc_opt_out", regime="opt-out") == 1
    assert grew(before, after, name, action="accept_all", regime="opt-in") == 1
    assert grew(before, after, name) == grew(before, after, "globalupdates_choices_total") == 3
