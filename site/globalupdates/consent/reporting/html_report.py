"""The operator's consent report: one HTML file that needs nothing but itself.

It holds the figures of ``consent stats``, charts of them over time and whether the proof
of consent verified when the report was made. The charts are drawn by pygal as static SVG
inside the page: pygal always adds a script (for tooltips), which is taken out of the
drawing along with its comments, so the page runs no code and loads nothing from anywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pygal
from flask import current_app
from markupsafe import Markup
from pygal.etree import etree

from ..proof.records import utc_text
from ..proof.verification import ChainReport, verify_chain
from ..web.engine import engine
from .stats import ConsentStats, Tally, consent_stats, period_keys
from .stats_formats import TABLE_HEADINGS, TABLE_LEGEND, languages_text, range_text, table_cells


def drop_pygal_map_importer() -> None:
    """Take pygal's import hook for its map plugins back off ``sys.meta_path``.

    pygal adds it when imported so that map plugins import as ``pygal.maps.*``. It has only
    the ``find_module`` method that Python 3.12 no longer calls and 3.11 warns about on every
    import that the other finders miss. The report draws no maps.
    """
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if not isinstance(finder, pygal.PluginImportFixer)
    ]


drop_pygal_map_importer()

SHOWN_PROBLEMS = 20
ACTION_SERIES: tuple[tuple[str, Callable[[Tally], int]], ...] = (
    ("Accept All", lambda tally: tally.accept_all),
    ("Reject All", lambda tally: tally.reject_all),
    ("Custom", lambda tally: tally.custom),
    ("GPC opt-out (not a choice)", lambda tally: tally.gpc_opt_outs),
)


@dataclass(frozen=True)
class ChainStatus:
    """Whether the chain verified, by the rule ``flask consent verify`` applies."""

    verified: bool
    summary: str
    problems: tuple[str, ...]
    unshown: int = 0


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    svg: Markup


def chain_status(allow_unkeyed: bool) -> ChainStatus:
    report = verify_chain()
    unkeyed_refused = report.unkeyed > 0 and not allow_unkeyed
    verified = report.intact and not unkeyed_refused
    problems = list(report.problems[:SHOWN_PROBLEMS])
    if unkeyed_refused:
        problems.append(
            f"{report.unkeyed} record(s) carry no proof key; only a site that kept records from "
            "before proof keys has any (then make the report with --allow-unkeyed)"
        )
    unshown = report.problem_count - min(report.problem_count, SHOWN_PROBLEMS)
    return ChainStatus(verified, chain_summary(report, verified), tuple(problems), unshown)


def chain_summary(report: ChainReport, verified: bool) -> str:
    outcome = "verified" if verified else "did NOT verify"
    found = f"; {report.problem_count} problem(s) found" if report.problem_count else ""
    return (
        f"The chain {outcome}: {report.checked} record(s) checked from "
        f"{report.describe_start()}, head hash {report.head_hash}{found}."
    )


def static_svg(chart: pygal.graph.graph.Graph, label: str) -> Markup:
    """The chart as an inline ``<svg>`` image named ``label``, with no script and no comment.

    Only the root keeps its id (the chart's style is scoped to it): pygal's other ids serve
    its script and repeat from chart to chart, which a page with several may not do.
    """
    root = chart.render_tree()
    root.set("role", "img")
    root.set("aria-label", label)
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag is etree.Comment or local_name(child.tag) == "script":
                parent.remove(child)
            else:
                child.attrib.pop("id", None)
    return Markup(etree.tostring(root, encoding="unicode"))


def local_name(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def chart_config(**settings: object) -> pygal.Config:
    config = pygal.Config()
    config.js = []
    config.disable_xml_declaration = True
    config.width = 900
    config.height = 380
    config.legend_at_bottom = True
    config.x_label_rotation = 30
    config.show_minor_x_labels = False
    config.x_labels_major_count = 12
    config.truncate_legend = -1
    config.no_data_text = "No records in this range"
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def tallies_over_time(stats: ConsentStats) -> tuple[list[str], list[Tally]]:
    """The periods from first to last, each with its tally (empty for a period with none)."""
    found = {group.key: group.tally for group in stats.of_kind(stats.by or "")}
    keys = period_keys(stats)
    empty = Tally.empty(len(stats.categories) + len(stats.services))
    return keys, [found.get(key, empty) for key in keys]


def percent_points(tallies: Sequence[Tally], count: Callable[[Tally], int]) -> list[float | None]:
    """Each period's share in percent; a period with no choice has no point, not a zero."""
    shares = (tally.share(count(tally)) for tally in tallies)
    return [None if share is None else round(share * 100, 1) for share in shares]


def opt_ins_of(index: int) -> Callable[[Tally], int]:
    return lambda tally: tally.opt_ins[index]


def percent_label(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def choices_chart(periods: list[str], tallies: list[Tally], by: str) -> Chart:
    chart = pygal.StackedBar(chart_config())
    chart.x_labels = periods
    for name, count in ACTION_SERIES:
        chart.add(name, [count(tally) for tally in tallies])
    title = f"Choices per {by} by action"
    return Chart(
        title,
        f"How many choices were made each {by} (UTC), by the action recorded.",
        static_svg(chart, title),
    )


def opt_in_chart(periods: list[str], tallies: list[Tally], titles: Sequence[str], by: str) -> Chart:
    chart = pygal.Line(
        chart_config(range=(0, 100), allow_interruptions=True, value_formatter=percent_label)
    )
    chart.x_labels = periods
    for index, title in enumerate(titles):
        chart.add(title, percent_points(tallies, opt_ins_of(index)))
    title = f"Opt-in rate per category, per {by}"
    return Chart(
        title,
        "The share of each period's choices that opted in to each optional category.",
        static_svg(chart, title),
    )


def gpc_chart(periods: list[str], tallies: list[Tally], by: str) -> Chart:
    chart = pygal.Line(
        chart_config(range=(0, 100), allow_interruptions=True, value_formatter=percent_label)
    )
    chart.x_labels = periods
    chart.add("Choices made under GPC", percent_points(tallies, lambda tally: tally.gpc))
    title = f"Share of choices made under GPC, per {by}"
    return Chart(
        title,
        "The share of each period's choices made while the browser sent Global Privacy Control.",
        static_svg(chart, title),
    )


def report_charts(stats: ConsentStats, titles: Sequence[str]) -> list[Chart]:
    by = stats.by or "day"
    periods, tallies = tallies_over_time(stats)
    return [
        choices_chart(periods, tallies, by),
        opt_in_chart(periods, tallies, titles, by),
        gpc_chart(periods, tallies, by),
    ]


def build_report(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str = "day",
    allow_unkeyed: bool = False,
) -> tuple[str, ChainStatus]:
    """The report's HTML, and the chain's status for the command to repeat."""
    made_at = datetime.now(UTC)
    registry = engine().registry
    keys = [category.key for category in registry.optional_categories]
    services = [(service.key, service.category) for service in registry.services]
    stats = consent_stats(
        keys, since=since, until=until, by=by, languages=registry.languages, services=services
    )
    titles = [category.title for category in registry.optional_categories]
    status = chain_status(allow_unkeyed)
    page = current_app.jinja_env.get_template("consent/report.html").render(
        made_at=utc_text(made_at.replace(microsecond=0)),
        records_range=range_text(stats),
        empty=stats.is_empty,
        chain=status,
        charts=report_charts(stats, [*titles, *(service.name for service in registry.services)]),
        headings=[*TABLE_HEADINGS, *keys, *stats.services],
        rows=[table_cells(group) for group in stats.groups],
        legend=" ".join(TABLE_LEGEND),
        languages=languages_text(stats),
    )
    return page, status
