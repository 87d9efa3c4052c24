"""What the cookie audit makes of what a browser held, without a browser: each kind of finding
against the registry, the category the Open Cookie Database suggests, the three outputs (the
HTML page valid and self-contained), the command's refusals and the data refresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from globalupdates.consent.reporting import cookie_database
from globalupdates.consent.reporting.audit_findings import findings_of
from globalupdates.consent.reporting.audit_formats import AuditResult, as_html, as_json, as_table
from globalupdates.consent.reporting.audit_plan import reader_states
from globalupdates.consent.reporting.audit_walk import (
    RegimeNotShown,
    SeenCookie,
    SeenRequest,
    SeenStorage,
    StateVisit,
    StateWalk,
)
from globalupdates.consent.web.engine import engine
from tests.consent.test_stats import PageShape, validation_errors

SITE = "http://127.0.0.1:8000"
VIDMOOR = "https://player.vidmoor.example"
YEAR = 365 * 86400


def cookie(name: str, lifetime: int | None = 3600, *, before: bool = False) -> SeenCookie:
    return SeenCookie(name, "127.0.0.1", "/", lifetime, True, False, "Lax", before)


def visit(
    state_key: str, *, cookies=(), storage=(), requests=(), edition="en", regime="opt-in"
) -> StateVisit:
    registry = engine().registry
    state = next(s for s in reader_states(registry) if s.key == state_key)
    seen = StateVisit(edition, state, regime)
    seen.cookies = {(c.name, c.domain, c.path, c.before_choice): c for c in cookies}
    seen.storage = set(storage)
    seen.requests = set(requests)
    return seen


def judged(*visits: StateVisit) -> dict[tuple[str, str, str], dict]:
    found = findings_of(list(visits), engine().registry, cookie_database.shipped_database())
    return {(f.kind, f.name, f.state): f.as_json() for f in found}


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield app


def test_granted_cookies_within_their_lifetime_are_no_finding(app_context):
    found = judged(
        visit("only-analytics", cookies=[cookie("gu_session", 100), cookie("gu_reader", YEAR)])
    )
    assert not [key for key in found if key[0] != "never-seen"]


def test_an_undeclared_cookie_is_named_with_the_open_cookie_databases_category(app_context):
    found = judged(visit("accept-all", cookies=[cookie("_fbp", 7776000), cookie("zz_unknown")]))
    facebook = found[("undeclared", "_fbp", "accept-all")]
    assert facebook["what"] == "cookie"
    assert facebook["suggestion"].startswith("Marketing (Facebook")
    assert "nearest category here: advertisement" in facebook["suggestion"]
    assert "suggestion" not in found[("undeclared", "zz_unknown", "accept-all")]


def test_a_cookie_of_a_category_not_granted_is_too_early(app_context):
    found = judged(
        visit("only-functional", cookies=[cookie("gu_reader")]),
        visit("no-choice", cookies=[cookie("gu_session", before=True)]),
    )
    assert "does not grant" in found[("too-early", "gu_reader", "only-functional")]["detail"]
    assert ("too-early", "gu_session", "no-choice") not in found, "necessary is always granted"


def test_a_cookie_set_before_the_choice_counts_only_the_necessary_as_granted(app_context):
    found = judged(visit("accept-all", cookies=[cookie("gu_reader", before=True)]))
    assert "before the choice" in found[("too-early", "gu_reader", "accept-all")]["detail"]


def test_a_cookie_living_longer_than_declared_is_reported(app_context):
    found = judged(visit("only-advertisement", cookies=[cookie("gu_ad_cap", 2 * 86400)]))
    assert found[("longer-than-declared", "gu_ad_cap", "only-advertisement")]["detail"] == (
        "lives 172800 s; declared for 86400 s"
    )


def test_storage_keys_are_judged_like_cookies_by_name(app_context):
    found = judged(
        visit(
            "reject-all",
            storage=[
                SeenStorage(SITE, "localStorage", "gu_text_size", False),
                SeenStorage(SITE, "sessionStorage", "tracker_state", False),
            ],
        )
    )
    assert found[("too-early", "gu_text_size", "reject-all")]["what"] == "localStorage"
    assert found[("undeclared", "tracker_state", "reject-all")]["what"] == "sessionStorage"


def test_requests_elsewhere_before_a_choice_or_ungranted_or_undeclared(app_context):
    found = judged(
        visit(
            "only-analytics",
            requests=[
                SeenRequest(VIDMOOR, f"{VIDMOOR}/embed/x", "/articles/a", before_choice=True),
                SeenRequest(VIDMOOR, f"{VIDMOOR}/embed/x", "/articles/a", before_choice=False),
                SeenRequest("https://ads.example", "https://ads.example/p", "/", False, True),
            ],
        ),
        visit(
            "only-functional",
            requests=[SeenRequest(VIDMOOR, f"{VIDMOOR}/embed/x", "/articles/a", False)],
        ),
    )
    assert "before the choice" in found[("too-early", VIDMOOR, "only-analytics")]["detail"]
    assert ("too-early", VIDMOOR, "only-functional") not in found
    undeclared = found[("undeclared", "https://ads.example", "only-analytics")]
    assert undeclared["what"] == "origin" and "blocked attempt" in undeclared["detail"]


def test_declared_but_never_seen_and_one_finding_per_state_across_editions(app_context):
    found = judged(
        visit("only-analytics", cookies=[cookie("zz")], edition="en"),
        visit("only-analytics", cookies=[cookie("zz")], edition="de"),
    )
    assert found[("undeclared", "zz", "only-analytics")]["editions"] == ["en", "de"]
    never = {name for kind, name, _ in found if kind == "never-seen"}
    assert {"gu_session", "gu_text_size", "vm_viewer", VIDMOOR} <= never


TALLYHOUSE = "https://collect.tallyhouse.example"


def before_any_choice(state_key: str, regime: str) -> StateVisit:
    """A visit whose browser held an analytics cookie and called the analytics service, and
    held the advertisement cookie, all before any choice."""
    return visit(
        state_key,
        regime=regime,
        cookies=[cookie("gu_reader", before=True), cookie("gu_ad_cap", before=True)],
        requests=[SeenRequest(TALLYHOUSE, f"{TALLYHOUSE}/c", "/", True)],
    )


def failing(*visits: StateVisit) -> dict[tuple[str, str, str, str], dict]:
    found = findings_of(list(visits), engine().registry, cookie_database.shipped_database())
    return {
        (f.kind, f.name, f.state, f.regime): f.as_json() for f in found if f.kind != "never-seen"
    }


def test_under_opt_out_what_runs_until_refused_is_not_too_early_before_a_choice(app_context):
    found = failing(before_any_choice("no-choice", "opt-out"))
    assert set(found) == {("too-early", "gu_ad_cap", "no-choice", "opt-out")}, found
    assert (
        "before the choice" in found[("too-early", "gu_ad_cap", "no-choice", "opt-out")]["detail"]
    )


def test_under_opt_in_the_same_defaults_are_too_early(app_context):
    found = failing(before_any_choice("no-choice", "opt-in"))
    assert set(found) == {
        ("too-early", name, "no-choice", "opt-in")
        for name in ("gu_reader", "gu_ad_cap", TALLYHOUSE)
    }


def test_under_opt_out_gpc_refuses_what_would_run_until_refused(app_context):
    found = failing(before_any_choice("gpc", "opt-out"))
    assert set(found) == {
        ("too-early", name, "gpc", "opt-out") for name in ("gu_reader", "gu_ad_cap", TALLYHOUSE)
    }


def test_under_opt_out_a_choice_that_refuses_the_defaults_makes_them_too_early(app_context):
    found = failing(
        visit("reject-all", regime="opt-out", cookies=[cookie("gu_reader")]),
        visit("only-performance", regime="opt-out", cookies=[cookie("gu_reader")]),
        visit("only-analytics", regime="opt-out", cookies=[cookie("gu_reader")]),
    )
    assert set(found) == {
        ("too-early", "gu_reader", "reject-all", "opt-out"),
        ("too-early", "gu_reader", "only-performance", "opt-out"),
    }


def test_under_opt_out_a_default_called_before_a_choice_that_refuses_it_is_not_too_early(
    app_context,
):
    def called(before: bool) -> StateVisit:
        request = SeenRequest(TALLYHOUSE, f"{TALLYHOUSE}/c", "/consent", before)
        return visit("reject-all", regime="opt-out", requests=[request])

    assert failing(called(before=True)) == {}, "on the page the choice was made on"
    found = failing(called(before=False))
    assert set(found) == {("too-early", TALLYHOUSE, "reject-all", "opt-out")}
    assert (
        "does not grant it" in found[("too-early", TALLYHOUSE, "reject-all", "opt-out")]["detail"]
    )


def test_one_finding_per_regime_and_a_visit_under_the_wrong_regime_is_not_judged(app_context):
    wrong = before_any_choice("no-choice", "opt-out")
    wrong.regime_shown = False
    assert failing(wrong) == {}
    found = failing(
        before_any_choice("no-choice", "opt-in"), before_any_choice("no-choice", "opt-out")
    )
    assert {regime for (_, name, _, regime) in found if name == "gu_ad_cap"} == {
        "opt-in",
        "opt-out",
    }


def test_a_page_under_another_regime_ends_the_visit_and_says_how_to_fix_it(app_context):
    walk = StateWalk(None, SITE, insecure=False, settle_ms=0, names_regime=True)
    walk.visit = visit("no-choice", regime="opt-out")
    walk.check_regime("/", "opt-out")
    with pytest.raises(RegimeNotShown) as raised:
        walk.check_regime("/", "opt-in")
    assert "shows the opt-in regime, not opt-out" in str(raised.value)
    assert "FLASK_CONSENT_AUDIT_ALLOWED" in str(raised.value)


def result_with_findings() -> AuditResult:
    visits = [
        visit(
            "only-analytics",
            cookies=[cookie("_ga", 600), cookie("gu_session")],
            storage=[SeenStorage(SITE, "localStorage", "trk <seen>", False)],
            requests=[SeenRequest("https://c.example", "https://c.example/x", "/", False)],
        )
    ]
    found = findings_of(visits, engine().registry, cookie_database.shipped_database())
    return AuditResult(SITE, "2026-12-06T21:00:00Z", 4, visits, found)


def test_the_outputs_say_the_same_findings(app_context, tmp_path: Path):
    result = result_with_findings()
    assert result.failed
    document = json.loads(as_json(result))
    assert document["passed"] is False
    finding = document["findings"][0]
    assert {"kind", "what", "name", "state", "regime", "editions", "detail"} <= set(finding)
    assert finding["regime"] == "opt-in" and document["visits"][0]["regime"] == "opt-in"
    assert document["regimes"] == ["opt-in"]
    assert document["visits"][0]["storage"][0]["name"] == "trk <seen>"
    table = as_table(result)
    rows = [line.split()[:5] for line in table.splitlines()]
    assert ["finding", "what", "name", "regime", "state"] in rows
    assert ["undeclared", "cookie", "_ga", "opt-in", "only-analytics"] in rows
    assert table.rstrip().endswith("(1 edition and state visits; regimes opt-in).")
    assert "Audit FAILED: 3 undeclared" in table


def test_the_html_page_is_valid_and_fetches_nothing(app_context, tmp_path: Path):
    page = tmp_path / "audit.html"
    page.write_text(as_html(result_with_findings()), encoding="utf-8")
    assert validation_errors(page) == []
    shape = PageShape()
    shape.feed(page.read_text("utf-8"))
    assert "script" not in shape.tags
    assert shape.fetching == []
    assert "trk &lt;seen&gt;" in page.read_text("utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://example.org"], "must be an http:// or https:// address"),
        (["http://127.0.0.1:9", "--format", "xml"], "Invalid value for '--format'"),
        (["http://127.0.0.1:9", "--edition", "es"], "not an edition of the site: es"),
        (["http://127.0.0.1:9"], "no preferences page answered"),
    ],
)
def test_the_command_refuses_what_it_cannot_audit(runner, args, message):
    result = runner.invoke(args=["consent", "audit", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_refreshing_the_cookie_data_replaces_it_whole_or_not_at_all(runner, tmp_path, monkeypatch):
    target = tmp_path / "open-cookie-database.csv"
    target.write_text("kept\n", encoding="utf-8")
    monkeypatch.setattr(cookie_database, "DATA_FILE", target)
    monkeypatch.setattr(cookie_database.refresh, "__defaults__", (target,))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,category\n_ga,Analytics\n", encoding="utf-8")
    refused = runner.invoke(args=["consent", "audit-data", "refresh", "--from", str(bad)])
    assert refused.exit_code == 1 and "not the Open Cookie Database" in refused.output
    assert target.read_text("utf-8") == "kept\n"
    source = tmp_path / "ocd.csv"
    source.write_text(
        "ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,"
        "Data Controller,User Privacy & GDPR Rights Portals,Wildcard match\n"
        "1,Example,Analytics,_ex_,,Counts,1 year,Example,,1\n",
        encoding="utf-8",
    )
    done = runner.invoke(args=["consent", "audit-data", "refresh", "--from", str(source)])
    assert done.exit_code == 0, done.output
    assert "1 cookie entries written" in done.output
    refreshed = cookie_database.shipped_database(target)
    assert refreshed.suggest("_ex_42").platform == "Example"
