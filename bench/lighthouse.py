"""Lighthouse on an article, before and after consent, against the site served by gunicorn.

    .venv/bin/python bench/lighthouse.py [--runs 3]

It installs the pinned Lighthouse (bench/package.json) into bench/node_modules when it is
missing, runs it with Debian's Chromium (default mobile emulation and simulated throttling)
several times per state, keeps the JSON reports in bench/reports/ (which git ignores) and
prints, for the run with the median performance score, the four category scores and the main
timings, then the gzipped weight of the consent JavaScript and CSS. Lighthouse multiplies the
CPU time it observes, so a busy machine lowers the performance score: the median of a few runs
and Lighthouse's own benchmark index of the machine are printed to show it. gunicorn is
started (and stopped) by tests/support, as the tests start it.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from first_view import ARTICLE, CONSENT_JS, consent_css, gzipped_size, served_site

from tests.support.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.support.consent import SAME_ORIGIN, SESSION_COOKIE
from tests.support.html import ACCEPT_ALL_BUTTON, select

BENCH = Path(__file__).resolve().parent
LIGHTHOUSE = BENCH / "node_modules" / ".bin" / "lighthouse"
REPORTS = BENCH / "reports"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
AUDITS = (
    "first-contentful-paint",
    "largest-contentful-paint",
    "total-blocking-time",
    "cumulative-layout-shift",
)


def install_lighthouse() -> None:
    if LIGHTHOUSE.exists():
        return
    print("installing the pinned Lighthouse into bench/node_modules", file=sys.stderr)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH, check=True
    )


def consent_cookie(base_url: str) -> str:
    """Accept All as a reader would (the banner's form), and return the session cookie."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(base_url + ARTICLE) as page:
        html = page.read().decode()
    if not select(html, ACCEPT_ALL_BUTTON):
        raise SystemExit("the article carries no consent form")
    form = urllib.parse.urlencode({"action": "accept_all"})
    # No token: the site trusts a post its browser says comes from its own pages.
    choice = urllib.request.Request(base_url + "/consent", data=form.encode(), headers=SAME_ORIGIN)
    with browser.open(choice):
        pass
    return "; ".join(f"{c.name}={c.value}" for c in jar if c.name == SESSION_COOKIE)


def run_lighthouse(url: str, report: Path, cookie: str | None) -> dict:
    command = [
        str(LIGHTHOUSE),
        url,
        f"--chrome-flags={' '.join(CHROMIUM_FLAGS)}",
        "--output=json",
        f"--output-path={report}",
        "--quiet",
        f"--only-categories={','.join(CATEGORIES)}",
    ]
    if cookie:
        command.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
    environment = {**os.environ, "CHROME_PATH": CHROMIUM}
    subprocess.run(command, check=True, env=environment, timeout=180)
    return json.loads(report.read_text())


def summary(result: dict) -> dict:
    return {
        "scores": {c: round(result["categories"][c]["score"] * 100) for c in CATEGORIES},
        "benchmark_index": result["environment"]["benchmarkIndex"],
        "timings": {a: result["audits"][a]["displayValue"] for a in AUDITS},
        "failed": sorted(
            audit_id
            for category in CATEGORIES
            for ref in result["categories"][category]["auditRefs"]
            if ref["weight"] > 0
            and (audit_id := ref["id"])
            and result["audits"][audit_id]["score"] is not None
            and result["audits"][audit_id]["score"] < 1
        ),
    }


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["scores"]["performance"])[len(runs) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per state")
    runs = max(1, parser.parse_args().runs)
    install_lighthouse()
    REPORTS.mkdir(exist_ok=True)
    figures: dict[str, dict] = {}
    performance: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as workdir, served_site(Path(workdir)) as base_url:
        for state, cookie in (
            ("before consent", None),
            ("after consent", consent_cookie(base_url)),
        ):
            found = []
            for run in range(1, runs + 1):
                report = REPORTS / f"lighthouse-{state.replace(' ', '-')}-{run}.json"
                found.append(summary(run_lighthouse(base_url + ARTICLE, report, cookie)))
            figures[state] = median_run(found)
            performance[state] = [run["scores"]["performance"] for run in found]
    print(f"Lighthouse {ARTICLE} (mobile, simulated throttling), median of {runs} run(s)")
    for state, found in figures.items():
        scores = "  ".join(f"{name} {score}" for name, score in found["scores"].items())
        print(f"  {state:<15} {scores}")
        print(
            f"  {'':<15} performance in each run: {performance[state]};"
            f" benchmark index {found['benchmark_index']:.0f}"
        )
        print(f"  {'':<15} " + "  ".join(f"{k} {v}" for k, v in found["timings"].items()))
        if found["failed"]:
            print(f"  {'':<15} audits below 1: {', '.join(found['failed'])}")
    print(f"consent JS  {gzipped_size(CONSENT_JS.read_bytes())} B gzipped")
    print(f"consent CSS {gzipped_size(consent_css())} B gzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
