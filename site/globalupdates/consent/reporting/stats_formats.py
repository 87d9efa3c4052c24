"""The operator's figures written out: JSON and CSV for another program, an aligned table to
read (``flask consent stats``), and the table's cells and legend the HTML report shares.

The figures themselves are counted in ``stats``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..proof.records import utc_text
from .stats import ConsentStats, Group


def as_rows(stats: ConsentStats) -> list[dict[str, Any]]:
    """One flat row per group, the same for JSON and CSV; shares are fractions of choices."""
    columns = (*stats.categories, *(f"service_{key}" for key in stats.services))
    return [row_of(group, columns, stats.languages) for group in stats.groups]


def row_of(
    group: Group, categories: Sequence[str], languages: Sequence[str] = ()
) -> dict[str, Any]:
    tally = group.tally
    row: dict[str, Any] = {"group": group.kind, "key": group.key, "choices": tally.choices}
    for name in ("accept_all", "reject_all", "custom"):
        row[name] = getattr(tally, name)
        row[f"{name}_share"] = rounded(tally.share(getattr(tally, name)))
    row["withdrawals"] = tally.withdrawals
    row["gpc"] = tally.gpc
    row["gpc_share"] = rounded(tally.share(tally.gpc))
    row["gpc_opt_outs"] = tally.gpc_opt_outs
    for key, count in zip(categories, tally.opt_ins, strict=True):
        row[f"{key}_opt_ins"] = count
        row[f"{key}_opt_in_rate"] = rounded(tally.share(count))
    for language in languages:
        row[f"choices_in_{language}"] = tally.choices_in(language)
    return row


def rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def range_text(stats: ConsentStats) -> str:
    since = utc_text(stats.since) if stats.since else "the first record"
    until = utc_text(stats.until) if stats.until else "now"
    return f"from {since} until {until}"


def as_json(stats: ConsentStats, generated_at: datetime | None = None) -> str:
    document = {
        "generated_at": utc_text(generated_at or datetime.now(UTC)),
        "since": utc_text(stats.since) if stats.since else None,
        "until": utc_text(stats.until) if stats.until else None,
        "by": stats.by,
        "optional_categories": list(stats.categories),
        "services": list(stats.services),
        "languages": list(stats.languages),
        "groups": as_rows(stats),
    }
    return json.dumps(document, indent=2) + "\n"


def as_csv(stats: ConsentStats) -> str:
    rows = as_rows(stats)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def table_cells(group: Group) -> list[str]:
    tally = group.tally
    label = group.key if group.kind == "all" else f"{group.kind} {group.key}"
    return [
        label,
        str(tally.choices),
        percent(tally.share(tally.accept_all)),
        percent(tally.share(tally.reject_all)),
        percent(tally.share(tally.custom)),
        str(tally.withdrawals),
        percent(tally.share(tally.gpc)),
        str(tally.gpc_opt_outs),
        *(percent(tally.share(count)) for count in tally.opt_ins),
    ]


TABLE_HEADINGS = (
    "group",
    "choices",
    "accept all",
    "reject all",
    "custom",
    "withdrawals",
    "under GPC",
    "GPC opt-outs",
)


def table_lines(stats: ConsentStats) -> Iterable[str]:
    """An aligned plain-text table, with a legend saying what the columns count."""
    headings = [*TABLE_HEADINGS, *stats.categories, *stats.services]
    body = [table_cells(group) for group in stats.groups]
    widths = [max(len(row[i]) for row in [headings, *body]) for i in range(len(headings))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    yield f"Consent choices {range_text(stats)} (UTC)"
    yield line(headings)
    yield from (line(cells) for cells in body)
    yield ""
    yield f"Choices by notice language: {languages_text(stats)}"
    yield ""
    yield from TABLE_LEGEND


def languages_text(stats: ConsentStats) -> str:
    """ "en 4 (66.7%), de 2 (33.3%)": every choice in range, by the language of its notice."""
    total = stats.total
    parts = [
        f"{language.replace('_', ' ')} {total.choices_in(language)} "
        f"({percent(total.share(total.choices_in(language)))})"
        for language in stats.languages
    ]
    return ", ".join(parts) or "none"


TABLE_LEGEND = (
    "Shares and opt-in rates are of choices. Custom: a save on the preferences page, or a",
    "withdrawal (a save or Reject All that took back an earlier grant). Under GPC: the",
    "browser sent Global Privacy Control as the choice was made. GPC opt-outs: choices the",
    "signal revised later; they are not choices and are left out of every share.",
    "Category columns: the share of choices that opted in to each optional category; service",
    "columns after them: the share that opted in to each service of a category.",
)


def as_table(stats: ConsentStats) -> str:
    return "\n".join(table_lines(stats)) + "\n"
