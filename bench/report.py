"""Tables of a bench's results, rendered from the summary.json bench/run.py wrote.

docs/performance.md quotes the results only through these tables: each sits between two marker
comments that name the table and the results folder it comes from,

    <!-- bench:summary bench/results/20261206T150102Z-sqlite -->

    | ... the table ... |

    <!-- /bench -->

and tests/test_docs.py checks that every such block equals its rendering. After a new bench,

    .venv/bin/python bench/report.py docs/performance.md     # render every block again
    .venv/bin/python bench/report.py bench/results/<folder>  # print every table of a folder

The judgement (the best site run against the best floor run of the same bench) is made here
and nowhere else, so bench/run.py prints what the docs quote.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = "summary.json"
BLOCK = re.compile(
    r"^<!-- bench:(?P<kind>[a-z-]+) (?P<folder>\S+) -->\n(?P<table>.*?)^<!-- /bench -->$",
    re.MULTILINE | re.DOTALL,
)
PSS_TARGET_MB = 120.0


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    floor: str
    min_ratio: float | None = None  # site req/s / floor req/s, at least
    max_p99_ratio: float | None = None  # site p99 / floor p99, at most
    min_hit: float | None = None  # share of X-Cache-Status HIT, at least
    postgresql_min_ratio: float | None = None


SCENARIOS = (
    Scenario(
        "first_visits",
        "first visits, gunicorn",
        "bare Flask, the same bytes",
        min_ratio=0.8,
        max_p99_ratio=2.0,
    ),
    Scenario(
        "returning_readers",
        "returning readers, gunicorn",
        "bare Flask, the same bytes",
        min_ratio=0.8,
        max_p99_ratio=2.0,
    ),
    Scenario(
        "first_visits_nginx",
        "first visits, deploy/nginx.conf",
        "nginx, the same bytes from files",
        min_ratio=0.5,
    ),
    Scenario(
        "returning_readers_nginx",
        "returning readers, deploy/nginx.conf",
        "nginx, the same bytes from files",
        min_ratio=0.5,
        min_hit=0.95,
    ),
    Scenario(
        "consent",
        "POST /consent, new readers",
        "bare Flask POST: form, session cookie, 303",
        min_ratio=0.5,
        postgresql_min_ratio=0.3,
    ),
    Scenario(
        "beacon",
        "page-view beacon",
        "bare Flask POST: JSON in, JSON out",
        min_ratio=0.5,
    ),
)
BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}


def load(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / SUMMARY).read_text(encoding="utf-8")))


def number(value: float) -> str:
    return f"{value:,.0f}"


def ms(value: float) -> str:
    return f"{value:.1f}"


def ratio(site: float, floor: float) -> float | None:
    return site / floor if floor else None


def ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def hit_share(result: dict[str, Any]) -> float | None:
    cache = result.get("extra", {}).get("cache")
    if not cache:
        return None
    total = sum(cache.values())
    return cache.get("HIT", 0) / total if total else None


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def best(summary: dict[str, Any], key: str, side: str) -> dict[str, Any] | None:
    """The run of ``key`` in which ``side`` (site or floor) answered the most per second."""
    found = [run["scenarios"][key][side] for run in summary["runs"] if key in run["scenarios"]]
    return max(found, key=lambda result: result["requests_per_second"]) if found else None


def min_ratio(summary: dict[str, Any], scenario: Scenario) -> float | None:
    if summary.get("database") == "postgresql" and scenario.postgresql_min_ratio is not None:
        return scenario.postgresql_min_ratio
    return scenario.min_ratio


def target_text(summary: dict[str, Any], scenario: Scenario) -> str:
    parts = []
    wanted = min_ratio(summary, scenario)
    if wanted is not None:
        parts.append(f"≥ {wanted:g}")
    if scenario.max_p99_ratio is not None:
        parts.append(f"p99 ≤ {scenario.max_p99_ratio:g} ×")
    if scenario.min_hit is not None:
        parts.append(f"≥ {scenario.min_hit * 100:g} % HIT")
    return ", ".join(parts)


@dataclass(frozen=True)
class Verdict:
    scenario: Scenario
    site: dict[str, Any]
    floor: dict[str, Any]
    rate_ratio: float | None
    p99_ratio: float | None
    hit: float | None
    met: bool


def judge(summary: dict[str, Any], scenario: Scenario) -> Verdict | None:
    site, floor = best(summary, scenario.key, "site"), best(summary, scenario.key, "floor")
    if site is None or floor is None:
        return None
    rate = ratio(site["requests_per_second"], floor["requests_per_second"])
    tail = ratio(site["p99_ms"], floor["p99_ms"])
    hit = hit_share(site)
    wanted = min_ratio(summary, scenario)
    met = (
        (wanted is None or (rate is not None and rate >= wanted))
        and (
            scenario.max_p99_ratio is None or (tail is not None and tail <= scenario.max_p99_ratio)
        )
        and (scenario.min_hit is None or (hit is not None and hit >= scenario.min_hit))
        and not site["errors"]
    )
    return Verdict(scenario, site, floor, rate, tail, hit, met)


def verdicts(summary: dict[str, Any]) -> list[Verdict]:
    return [found for scenario in SCENARIOS if (found := judge(summary, scenario)) is not None]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def met_text(met: bool) -> str:
    return "met" if met else "**missed**"


def summary_table(summary: dict[str, Any]) -> str:
    """Each scenario: the best site run against the best floor run, and the target."""
    rows = []
    for verdict in verdicts(summary):
        site, floor = verdict.site, verdict.floor
        rows.append(
            [
                verdict.scenario.title,
                number(site["requests_per_second"]),
                number(floor["requests_per_second"]),
                ratio_text(verdict.rate_ratio),
                f"{ms(site['p50_ms'])} / {ms(site['p99_ms'])}",
                f"{ms(floor['p50_ms'])} / {ms(floor['p99_ms'])}",
                ratio_text(verdict.p99_ratio),
                percent(verdict.hit) if verdict.hit is not None else "",
                target_text(summary, verdict.scenario),
                met_text(verdict.met),
            ]
        )
    header = ["scenario", "site req/s", "floor req/s", "site / floor", "site p50 / p99 ms"]
    header += ["floor p50 / p99 ms", "p99 site / floor", "HIT", "target", ""]
    return table(header, rows)


def runs_table(summary: dict[str, Any]) -> str:
    """Every run of every scenario, site beside floor, with errors and what the site answered."""
    rows = []
    for run in summary["runs"]:
        for scenario in SCENARIOS:
            found = run["scenarios"].get(scenario.key)
            if found is None:
                continue
            site, floor = found["site"], found["floor"]
            statuses = ", ".join(f"{code}: {count:,}" for code, count in site["statuses"].items())
            errors = sum(site["errors"].values())
            rows.append(
                [
                    str(run["run"]),
                    scenario.title,
                    f"{number(site['requests_per_second'])} ({ms(site['p50_ms'])} / "
                    f"{ms(site['p99_ms'])})",
                    f"{number(floor['requests_per_second'])} ({ms(floor['p50_ms'])} / "
                    f"{ms(floor['p99_ms'])})",
                    ratio_text(ratio(site["requests_per_second"], floor["requests_per_second"])),
                    f"{site['answered']:,} in {site['seconds']:.1f} s",
                    statuses,
                    str(errors),
                    percent(hit_share(site)) if hit_share(site) is not None else "",
                ]
            )
    header = ["run", "scenario", "site req/s (p50 / p99 ms)", "floor req/s (p50 / p99 ms)"]
    header += ["site / floor", "site answered", "site statuses", "site errors", "HIT"]
    return table(header, rows)


def memory_cells(memory: dict[str, Any]) -> list[str]:
    workers = ", ".join(f"{worker['pss']:.0f}" for worker in memory["workers"])
    return [f"{memory['master']['pss']:.0f}", workers, f"{memory['total_pss']:.0f}"]


def memory_table(summary: dict[str, Any]) -> str:
    """PSS in MB of gunicorn's master and each worker after the whole bench; then the site's
    total after each scenario of each run (its one gunicorn served them all, in this order)."""
    after = summary["memory_after_bench"]
    site_total = after["site"]["total_pss"]
    header = ["after the whole bench", "master", "workers", "total", f"≤ {PSS_TARGET_MB:g} MB"]
    rows = [
        ["site", *memory_cells(after["site"]), met_text(site_total <= PSS_TARGET_MB)],
        ["floor (bare Flask)", *memory_cells(after["floor"]), ""],
    ]
    measured = [s for s in SCENARIOS if any(s.key in run["scenarios"] for run in summary["runs"])]
    steps = []
    for run in summary["runs"]:
        cells = [f"run {run['run']}"]
        for scenario in measured:
            memory = run["scenarios"].get(scenario.key, {}).get("site", {}).get("memory")
            cells.append(f"{memory['total_pss']:.0f}" if memory else "")
        steps.append(cells)
    steps_header = ["site's total after", *(scenario.title for scenario in measured)]
    return table(header, rows) + "\n" + table(steps_header, steps)


def setting_table(summary: dict[str, Any]) -> str:
    """What was measured, on what, with what."""
    readers = summary["readers"]
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in readers["kinds"].items())
    wrk, machine, code = summary["wrk"], summary["machine"], summary["code"]
    changed = " with local changes" if code["changes"] else ""
    rows = [
        ["code", f"`{code['commit'][:12]}`{changed}"],
        ["when", f"{summary['started_at']} to {summary['finished_at']}"],
        ["database", summary["database"]],
        ["gunicorn", summary["gunicorn"]],
        [
            "wrk",
            f"{wrk['threads']} threads, {wrk['connections']} connections, "
            f"timed runs {wrk['seconds']} s",
        ],
        ["runs", str(len(summary.get("runs", summary.get("setups", []))))],
        ["pages", f"{len(summary['pages'])} over {len(summary['editions'])} editions"],
        [
            "readers",
            f"{readers['count']:,} ({kinds}); cookies kept: {', '.join(readers['cookie_names'])}",
        ],
        [
            "machine",
            f"{machine['cpus']} CPUs; load average before {machine['load_before']}, "
            f"after {machine['load_after']}",
        ],
    ]
    return table(["", "this bench"], rows)


def workers_table(summary: dict[str, Any]) -> str:
    """--compare-workers: each set-up's site req/s (and its floor's) in each scenario."""
    rows = []
    for setup in summary["setups"]:
        cells = [setup["gunicorn"]]
        for scenario in SCENARIOS:
            found = setup["scenarios"].get(scenario.key)
            if found is None:
                continue
            site, floor = found["site"], found["floor"]
            cells.append(
                f"{number(site['requests_per_second'])} / {number(floor['requests_per_second'])}"
                f" (p99 {ms(site['p99_ms'])})"
            )
        cells.append(f"{setup['memory']['total_pss']:.0f}")
        rows.append(cells)
    measured = [
        s for s in SCENARIOS if any(s.key in setup["scenarios"] for setup in summary["setups"])
    ]
    header = ["set-up", *(f"{s.title}: site / floor req/s" for s in measured), "site PSS MB"]
    return table(header, rows)


METRICS_MIN_RATIO = 0.95  # the site with metrics answers at least 95 % of what it does without


def fine_ratio(value: float | None) -> str:
    """Three places: a ratio of 0.946 misses a target of 0.95, and must not read as 0.95."""
    return "n/a" if value is None else f"{value:.3f}"


def metrics_table(summary: dict[str, Any]) -> str:
    """--compare-metrics: each scenario's best run with the metrics on against its best run
    with them off, each run's pair, and the target."""
    runs = summary["metrics"]["runs"]
    measured_cpu = any(
        site_cpu(run["scenarios"][key][side]) is not None
        for run in runs
        for key in run["scenarios"]
        for side in ("on", "off")
    )
    rows = []
    for scenario in SCENARIOS:
        pairs = [run["scenarios"][scenario.key] for run in runs if scenario.key in run["scenarios"]]
        if not pairs:
            continue
        on = max(pair["on"]["requests_per_second"] for pair in pairs)
        off = max(pair["off"]["requests_per_second"] for pair in pairs)
        each = ", ".join(
            fine_ratio(ratio(pair["on"]["requests_per_second"], pair["off"]["requests_per_second"]))
            for pair in pairs
        )
        errors = any(pair[side]["errors"] for pair in pairs for side in ("on", "off"))
        best_ratio = ratio(on, off)
        met = best_ratio is not None and best_ratio >= METRICS_MIN_RATIO and not errors
        row = [scenario.title, number(on), number(off), fine_ratio(best_ratio), each]
        if measured_cpu:
            row.append(cpu_cost_text(pairs))
        rows.append([*row, f"≥ {METRICS_MIN_RATIO:g}", met_text(met)])
    header = ["scenario", "metrics on req/s", "metrics off req/s", "on / off"]
    header.append("each run's on / off")
    if measured_cpu:
        header.append("site CPU per answer, on / off (median)")
    return table([*header, "target", ""], rows)


def site_cpu(result: dict[str, Any]) -> float | None:
    value = result.get("extra", {}).get("site_cpu_us_per_answer")
    return None if value is None else float(value)


def cpu_cost_text(pairs: list[dict[str, Any]]) -> str:
    """The median CPU time per answer of each side over the runs, and what the metrics add."""
    sides = {
        side: sorted(v for pair in pairs if (v := site_cpu(pair[side])) is not None)
        for side in ("on", "off")
    }
    if not sides["on"] or not sides["off"]:
        return "n/a"
    on, off = statistics.median(sides["on"]), statistics.median(sides["off"])
    return f"{on:,.0f} / {off:,.0f} µs ({(on / off - 1) * 100:+.1f} %)"


def soak_table(summary: dict[str, Any]) -> str:
    """--soak: the site alone under many more connections; errors are what it is read for."""
    rows = []
    for key, result in summary.get("soak", {}).items():
        statuses = ", ".join(f"{code}: {count:,}" for code, count in result["statuses"].items())
        errors = ", ".join(f"{kind} {count}" for kind, count in result["errors"].items())
        rows.append(
            [
                BY_KEY[key].title,
                f"{number(result['requests_per_second'])} ({ms(result['p50_ms'])} / "
                f"{ms(result['p99_ms'])})",
                f"{result['answered']:,} in {result['seconds']:.1f} s",
                statuses,
                errors or "none",
            ]
        )
    header = ["scenario", "site req/s (p50 / p99 ms)", "answered", "statuses", "errors"]
    return table(header, rows)


NGINX_VARIANT_TITLES = {
    "shipped": "as shipped",
    "whole_address": "log the whole address (no network map)",
    "no_request_id": "no request id (header, upstream, log)",
    "no_access_log": "no access log",
    "floor": "floor: the same bytes from files",
}


def nginx_variants_table(summary: dict[str, Any]) -> str:
    """--compare-nginx: for each scenario and variant of deploy/nginx.conf, its best req/s,
    against the best floor and against the file as shipped, each run's req/s and the HIT share
    of its best run (n/a without a log)."""
    runs = summary["nginx_variants"]["runs"]
    rows = []
    for scenario in SCENARIOS:
        found = [run["scenarios"][scenario.key] for run in runs if scenario.key in run["scenarios"]]
        if not found:
            continue

        def best_of(name: str, found: list[dict[str, Any]] = found) -> dict[str, Any]:
            return max((each[name] for each in found), key=lambda r: r["requests_per_second"])

        floor = best_of("floor")["requests_per_second"]
        shipped = best_of("shipped")["requests_per_second"]
        for name, title in NGINX_VARIANT_TITLES.items():
            top = best_of(name)
            rate = top["requests_per_second"]
            each = ", ".join(number(run[name]["requests_per_second"]) for run in found)
            rows.append(
                [
                    scenario.title,
                    title,
                    number(rate),
                    ratio_text(ratio(rate, floor)),
                    ratio_text(ratio(rate, shipped)),
                    each,
                    percent(hit_share(top)) if name not in ("floor", "no_access_log") else "n/a",
                ]
            )
    header = ["scenario", "nginx", "req/s", "/ floor", "/ shipped", "each run's req/s", "HIT"]
    return table(header, rows)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "summary": summary_table,
    "runs": runs_table,
    "memory": memory_table,
    "setting": setting_table,
    "workers": workers_table,
    "metrics": metrics_table,
    "nginx": nginx_variants_table,
    "soak": soak_table,
}


def render(kind: str, folder: Path) -> str:
    """The table (or tables) ``kind`` of the bench in ``folder``, ending with a line break."""
    if kind not in RENDERERS:
        raise ValueError(f"no table called {kind!r}; there are {', '.join(RENDERERS)}")
    return RENDERERS[kind](load(folder))


@dataclass(frozen=True)
class Block:
    kind: str
    folder: str
    table: str


def blocks(text: str) -> list[Block]:
    """Each block's table, without the blank lines that set it apart from its markers."""
    return [Block(m["kind"], m["folder"], m["table"].strip("\n")) for m in BLOCK.finditer(text)]


def rendered_document(text: str, root: Path = ROOT) -> str:
    def again(match: re.Match[str]) -> str:
        body = render(match["kind"], root / match["folder"])
        return f"<!-- bench:{match['kind']} {match['folder']} -->\n\n{body}\n<!-- /bench -->"

    return BLOCK.sub(again, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="a Markdown document, or a results folder")
    target = parser.parse_args().target
    if target.is_dir():
        summary = load(target)
        if "setups" in summary:
            kinds = ["workers"]
        elif "metrics" in summary:
            kinds = ["metrics"]
        else:
            kinds = ["setting", "summary", "runs", "memory"]
        kinds += ["soak"] if "soak" in summary else []
        for kind in kinds:
            print(RENDERERS[kind](summary))
        return
    text = target.read_text(encoding="utf-8")
    if not blocks(text):
        sys.exit(f"{target} has no <!-- bench:... --> block")
    target.write_text(rendered_document(text), encoding="utf-8")


if __name__ == "__main__":
    main()
