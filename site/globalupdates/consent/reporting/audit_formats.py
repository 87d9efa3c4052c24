"""The audit's result as an aligned table, JSON for another program, or one self-contained
HTML page (no script, nothing fetched, like ``consent report``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .audit_findings import FAILING_KINDS, Finding, fails
from .audit_walk import StateVisit

TABLE_HEADINGS = ("finding", "what", "name", "regime", "state", "editions", "detail")


@dataclass(frozen=True)
class AuditResult:
    url: str
    made_at: str
    revision: int
    visits: list[StateVisit]
    findings: list[Finding]

    @property
    def problems(self) -> list[str]:
        return [
            f"{v.edition} {v.regime} {v.state.key}: {p}" for v in self.visits for p in v.problems
        ]

    @property
    def regimes(self) -> list[str]:
        return list(dict.fromkeys(visit.regime for visit in self.visits))

    @property
    def failed(self) -> bool:
        """Undeclared or too-early findings, or a state that could not be audited whole."""
        return fails(self.findings) or bool(self.problems)

    @property
    def summary(self) -> str:
        counts = {kind: 0 for kind in ("undeclared", "too-early", "longer-than-declared")}
        counts["never-seen"] = 0
        for finding in self.findings:
            counts[finding.kind] += 1
        told = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        if self.problems:
            told += f", {len(self.problems)} pages or choices that failed"
        verdict = "FAILED" if self.failed else "passed"
        regimes = ", ".join(self.regimes) or "no regime"
        return (
            f"Audit {verdict}: {told} ({len(self.visits)} edition and state visits;"
            f" regimes {regimes})."
        )


def visit_json(visit: StateVisit) -> dict[str, Any]:
    return {
        "edition": visit.edition,
        "regime": visit.regime,
        "regime_shown": visit.regime_shown,
        "state": visit.state.key,
        "gpc": visit.state.gpc,
        "pages": [{"kind": page.kind, "path": page.path} for page in visit.pages],
        "cookies": [
            {
                "name": c.name,
                "domain": c.domain,
                "path": c.path,
                "lifetime_seconds": c.lifetime,
                "http_only": c.http_only,
                "secure": c.secure,
                "same_site": c.same_site,
                "before_choice": c.before_choice,
            }
            for c in sorted(visit.cookies.values(), key=lambda c: (c.name, c.before_choice))
        ],
        "storage": [
            {"origin": s.origin, "area": s.area, "name": s.name, "before_choice": s.before_choice}
            for s in sorted(visit.storage, key=lambda s: (s.origin, s.area, s.name))
        ],
        "requests": [
            {
                "origin": r.origin,
                "url": r.url,
                "page": r.page,
                "before_choice": r.before_choice,
                "blocked": r.blocked,
            }
            for r in sorted(visit.requests, key=lambda r: (r.origin, r.url, r.page))
        ],
        "problems": visit.problems,
    }


def as_json(result: AuditResult) -> str:
    document = {
        "url": result.url,
        "made_at": result.made_at,
        "registry_revision": result.revision,
        "regimes": result.regimes,
        "passed": not result.failed,
        "visits": [visit_json(visit) for visit in result.visits],
        "findings": [finding.as_json() for finding in result.findings],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def finding_cells(finding: Finding) -> list[str]:
    detail = finding.detail + (f"; suggested: {finding.suggestion}" if finding.suggestion else "")
    return [
        finding.kind,
        finding.what,
        finding.name,
        finding.regime,
        finding.state,
        " ".join(finding.editions),
        detail,
    ]


def as_table(result: AuditResult) -> str:
    rows = [list(TABLE_HEADINGS), *(finding_cells(f) for f in result.findings)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADINGS) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    return "\n".join([*lines, *result.problems, "", result.summary]) + "\n"


def as_html(result: AuditResult) -> str:
    return current_app.jinja_env.get_template("consent/audit_report.html").render(
        result=result,
        headings=TABLE_HEADINGS,
        rows=[(f.kind in FAILING_KINDS, finding_cells(f)) for f in result.findings],
        visits=[visit_json(visit) for visit in result.visits],
    )


FORMATS = {"table": as_table, "json": as_json, "html": as_html}
