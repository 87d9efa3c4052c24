"""`flask consent audit` in Debian's Chromium against the site under gunicorn: it names what an
operator's third-party script really does, calls a script that runs before any choice too
early, and passes on the demo site as shipped, whose audit choices the figures leave out."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from globalupdates.config import PROJECT_ROOT
from tests.support.consent import operator_registry
from tests.support.gunicorn_server import inherited_environment, running_gunicorn
from tests.support.third_parties import injecting_proxy, self_signed_certificate, third_party

pytestmark = pytest.mark.slow

AUDIT_SECONDS = 600
# What the operator's tracker does once the reader grants analytics: a cookie named like
# Google Analytics' (so the Open Cookie Database knows it), a localStorage key, and a call
# to an origin nobody declared.
TRACKER = """
document.cookie = "_ga=GA1.1.12345.67890; path=/; max-age=600";
localStorage.setItem("trk_seen", "1");
fetch("COLLECTOR/collect?id=1", { mode: "no-cors" }).catch(() => {});
"""
EARLY = 'document.documentElement.dataset.early = "ran";'
# The reader states the audit visits each edition in, written out here: no choice, each way
# of choosing, and the GPC signal.
AUDITED_STATES = (
    "no-choice",
    "reject-all",
    "only-functional",
    "only-analytics",
    "only-performance",
    "only-advertisement",
    "accept-all",
    "gpc",
)


def site_settings(registry: Path | None, languages: str | None = None) -> dict[str, str]:
    settings = {"WEB_CONCURRENCY": "2"}
    if registry is not None:
        settings["FLASK_CONSENT_REGISTRY"] = str(registry)
    if languages is not None:
        settings["FLASK_LANGUAGES"] = languages
    return settings


def flask_command(folder: Path, settings: dict[str, str], *args: str):
    """A `flask` command as the operator runs it: the site's own settings and database."""
    environment = {
        **inherited_environment(),
        **{name: value for name, value in settings.items() if name.startswith("FLASK_")},
        "FLASK_APP": "wsgi",
        "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'site.sqlite3'}",
        "FLASK_INSTANCE_PATH": str(folder / "instance"),
        "FLASK_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=AUDIT_SECONDS,
    )


def run_audit(
    url: str, folder: Path, settings: dict[str, str], *extra: str
) -> tuple[int, Any, str]:
    output = folder / "audit.json"
    started = time.monotonic()
    done = flask_command(
        folder,
        settings,
        "consent",
        "audit",
        url,
        "--format",
        "json",
        "-o",
        str(output),
        *extra,
    )
    print(f"audit took {time.monotonic() - started:.1f} s")
    assert output.exists(), done.stderr[-3000:]
    return done.returncode, json.loads(output.read_text("utf-8")), done.stderr


def findings(document: dict, kind: str, name: str, regime: str = "opt-in") -> dict[str, dict]:
    """The findings of this kind and name under one regime, by state."""
    return {
        f["state"]: f
        for f in document["findings"]
        if f["kind"] == kind and f["name"] == name and f["regime"] == regime
    }


def planted_registry(folder: Path, tracker: str) -> Path:
    lines = (
        f'\n  [[categories.scripts]]\n  src = "{tracker}/tracker.js"\n  origins = ["{tracker}"]\n'
    )
    return operator_registry(folder, lines)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A site (audited in its English edition) whose operator registry declares a tracker
    under analytics, which calls an origin declared nowhere; in front of it, a proxy that
    adds a script of yet another origin to every page, so that it runs before any choice."""
    folder = tmp_path_factory.mktemp("planted")
    certificate = self_signed_certificate(folder)
    with (
        third_party(certificate) as collector,
        third_party(certificate, {"/early.js": EARLY}) as early,
        third_party(
            certificate, {"/tracker.js": TRACKER.replace("COLLECTOR", collector.origin)}
        ) as tracker,
    ):
        settings = site_settings(planted_registry(folder, tracker.origin))
        database = f"sqlite:///{folder / 'site.sqlite3'}"
        with (
            running_gunicorn(database, folder, settings) as site,
            injecting_proxy(site.port, f"{early.origin}/early.js") as proxied,
        ):
            status, document, stderr = run_audit(
                proxied, folder, settings, "--insecure", "--edition", "en"
            )
        yield {
            "status": status,
            "document": document,
            "stderr": stderr,
            "tracker": tracker,
            "collector": collector,
            "early": early,
        }


def test_the_audit_names_a_trackers_cookie_storage_key_and_third_origin_and_fails(planted):
    document = planted["document"]
    assert planted["status"] == 1, planted["stderr"][-2000:]
    assert document["passed"] is False
    collector = planted["collector"].origin
    for kind_name in (("undeclared", "_ga"), ("undeclared", "trk_seen"), ("undeclared", collector)):
        # the tracker runs wherever analytics is granted, and nowhere else; under opt-out
        # that is also before any choice (unless GPC refuses it), so every state whose choice
        # is made on a page finds it there
        states = set(findings(document, *kind_name))
        assert states == {"only-analytics", "accept-all", "gpc"}, (kind_name, states)
        states = set(findings(document, *kind_name, regime="opt-out"))
        assert states == set(AUDITED_STATES), (kind_name, states)
    cookie = findings(document, "undeclared", "_ga")["only-analytics"]
    assert cookie["what"] == "cookie"
    assert "Analytics" in cookie["suggestion"] and "analytics" in cookie["suggestion"]
    assert findings(document, "undeclared", "trk_seen")["only-analytics"]["what"] == "localStorage"
    assert findings(document, "undeclared", collector)["only-analytics"]["what"] == "origin"
    tracker = planted["tracker"].origin
    for regime in ("opt-in", "opt-out"):
        assert not findings(document, "undeclared", tracker, regime), "its origin is declared"
        assert not findings(document, "too-early", tracker, regime), (
            "it loads only where analytics is granted (under opt-out, until refused)"
        )


def test_what_the_json_holds_per_state_is_what_the_browser_held(planted):
    document = planted["document"]
    assert document["regimes"] == ["opt-in", "opt-out"]
    assert [(v["regime"], v["state"]) for v in document["visits"]] == [
        (regime, state) for regime in ("opt-in", "opt-out") for state in AUDITED_STATES
    ]
    assert all(v["regime_shown"] for v in document["visits"])
    visits = {v["state"]: v for v in document["visits"] if v["regime"] == "opt-in"}
    tracker = planted["tracker"].origin
    by_default = next(
        v for v in document["visits"] if (v["regime"], v["state"]) == ("opt-out", "no-choice")
    )
    assert any(r["origin"] == tracker and r["before_choice"] for r in by_default["requests"])
    assert not any(r["origin"] == tracker for r in visits["no-choice"]["requests"])
    analytics = visits["only-analytics"]
    assert {c["name"] for c in analytics["cookies"]} >= {"_ga", "gu_session", "gu_reader"}
    ga = next(c for c in analytics["cookies"] if c["name"] == "_ga")
    assert (ga["domain"], ga["path"], ga["http_only"]) == ("127.0.0.1", "/", False)
    assert 0 < ga["lifetime_seconds"] <= 600
    assert {"trk_seen"} <= {s["name"] for s in analytics["storage"] if s["area"] == "localStorage"}
    collector = planted["collector"].origin
    calls = [r for r in analytics["requests"] if r["origin"] == collector]
    assert calls and all(not r["before_choice"] for r in calls)
    reject = visits["reject-all"]
    assert "_ga" not in {c["name"] for c in reject["cookies"]}
    assert not [r for r in reject["requests"] if r["origin"] == planted["tracker"].origin]
    kinds = {page["kind"] for page in analytics["pages"]}
    assert {
        "front page",
        "section page",
        "tag page",
        "article page",
        "search page",
        "preferences",
        "cookie policy",
        "privacy notice",
    } <= kinds
    assert "article page (with embed)" in kinds


def test_a_script_that_runs_before_any_choice_is_called_too_early(planted):
    early = planted["early"].origin
    too_early = findings(planted["document"], "too-early", early)
    assert "no-choice" in too_early, planted["document"]["findings"]
    assert "before the choice" in too_early["no-choice"]["detail"]
    assert any(path.startswith("/early.js") for path in planted["early"].requested)


@pytest.fixture(scope="module")
def demo_audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo site as shipped, every edition, as CI audits it."""
    folder = tmp_path_factory.mktemp("demo")
    settings = site_settings(None)
    with running_gunicorn(f"sqlite:///{folder / 'site.sqlite3'}", folder, settings) as site:
        started = time.monotonic()
        status, document, stderr = run_audit(site.base_url, folder, settings)
        seconds = time.monotonic() - started
        stats = flask_command(folder, settings, "consent", "stats", "--format", "json")
        verify = flask_command(folder, settings, "consent", "verify")
        metrics = site.get("/metrics")[1]
    yield {
        "status": status,
        "document": document,
        "stderr": stderr,
        "seconds": seconds,
        "stats": stats,
        "verify": verify,
        "metrics": metrics,
    }


def test_the_demo_site_as_shipped_passes_its_audit_under_each_regime(demo_audit):
    document = demo_audit["document"]
    assert demo_audit["status"] == 0, [f for f in document["findings"] if f["kind"] != "never-seen"]
    assert document["passed"] is True
    assert {f["kind"] for f in document["findings"]} <= {"never-seen", "longer-than-declared"}
    assert document["regimes"] == ["opt-in", "opt-out"]
    visits = document["visits"]
    assert sorted((v["edition"], v["regime"], v["state"]) for v in visits) == sorted(
        (edition, regime, state)
        for edition in ("en", "de", "fr")
        for regime in ("opt-in", "opt-out")
        for state in AUDITED_STATES
    )
    assert all(v["regime_shown"] and not v["problems"] for v in visits)
    by_state = {(v["edition"], v["state"]): v for v in visits if v["regime"] == "opt-in"}
    assert not by_state[("de", "no-choice")]["cookies"], "nothing is stored before a choice"
    assert {c["name"] for c in by_state[("fr", "accept-all")]["cookies"]} >= {
        "gu_session",
        "gu_variant",
        "gu_reader",
    }
    assert "gu_ad_cap" not in {c["name"] for c in by_state[("en", "gpc")]["cookies"]}
    embed = [r for r in by_state[("en", "only-functional")]["requests"] if not r["before_choice"]]
    assert {r["origin"] for r in embed} == {"https://player.vidmoor.example"}
    assert demo_audit["seconds"] < AUDIT_SECONDS


def test_under_the_demos_opt_out_regime_analytics_runs_until_refused_and_is_not_too_early(
    demo_audit,
):
    visits = {(v["edition"], v["regime"], v["state"]): v for v in demo_audit["document"]["visits"]}
    tallyhouse = "https://cdn.tallyhouse.example"  # its script, declared under analytics

    def called_before_choice(*key: str) -> bool:
        return any(
            r["origin"] == tallyhouse and r["before_choice"] for r in visits[key]["requests"]
        )

    assert called_before_choice("en", "opt-out", "no-choice")
    assert not called_before_choice("en", "opt-in", "no-choice")
    assert not called_before_choice("en", "opt-out", "gpc"), "GPC refuses it on the first request"

    def cookies(*key: str) -> set[str]:
        return {c["name"] for c in visits[key]["cookies"] if c["before_choice"]}

    assert "gu_reader" in cookies("fr", "opt-out", "no-choice")
    assert "gu_reader" not in cookies("fr", "opt-in", "no-choice")
    assert not [f for f in demo_audit["document"]["findings"] if f["kind"] == "too-early"]


def test_the_audits_choices_are_proof_records_left_out_of_the_figures(demo_audit):
    assert demo_audit["verify"].returncode == 0, demo_audit["verify"].stdout
    stats = demo_audit["stats"]
    assert stats.returncode == 0, stats.stderr
    groups = json.loads(stats.stdout)["groups"]
    assert [(g["group"], g["choices"]) for g in groups] == [("all", 0)], "no revision counted"
    chosen_states = 7 * 3  # every state but no choice, in each edition, under each regime
    metrics = demo_audit["metrics"]
    assert f"globalupdates_audit_choices_total {float(2 * chosen_states)}" in metrics
    assert "globalupdates_choices_total{" not in metrics
    regimes = demo_audit["verify"].stdout
    assert f"opt-in {chosen_states}" in regimes and f"opt-out {chosen_states}" in regimes, regimes
    assert 'globalupdates_audit_regime_requests_total{honoured="no"}' not in metrics


def test_the_audit_stops_at_once_when_the_site_does_not_honour_its_regime(tmp_path):
    settings = {**site_settings(None), "FLASK_CONSENT_AUDIT_ALLOWED": "192.0.2.0/24"}
    with running_gunicorn(f"sqlite:///{tmp_path / 'site.sqlite3'}", tmp_path, settings) as site:
        done = flask_command(
            tmp_path, settings, "consent", "audit", site.base_url, "--edition", "en"
        )
        verify = flask_command(tmp_path, settings, "consent", "verify")
    assert done.returncode == 1
    assert "did not put the audit under the opt-out regime" in done.stderr
    assert "FLASK_CONSENT_AUDIT_ALLOWED" in done.stderr
    assert "Nothing was audited" in done.stderr
    assert "Records checked: 0" in verify.stdout, "no choice was made"


def owner_of(pid: int) -> int:
    """The real user id of a running process, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def test_the_audit_browser_runs_unprivileged_when_the_command_runs_as_root():
    from globalupdates.consent.reporting.audit_browser import chromium_process

    with chromium_process() as running:
        owner = owner_of(running.pid)
        assert running.devtools_url.startswith("ws://127.0.0.1:")
    assert owner == (pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid())
