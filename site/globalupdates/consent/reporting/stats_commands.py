"""``flask consent stats`` and ``report``: how readers chose, as a table, JSON or CSV, or one
self-contained HTML page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from ...database import error_summary
from ..proof.proof_keys import ProofKeyError
from ..web.engine import engine
from .command_options import (
    SINCE,
    UNTIL,
    check_range,
    format_option,
    output_option,
    write_lines,
)
from .stats import PERIODS, ConsentStats, consent_stats
from .stats_formats import as_csv, as_json, as_table, range_text

STATS_FORMATS: dict[str, Callable[[ConsentStats], str]] = {
    "table": as_table,
    "json": as_json,
    "csv": as_csv,
}


@click.command("stats")
@with_appcontext
@SINCE
@UNTIL
@click.option(
    "--by",
    type=click.Choice(PERIODS),
    help="Also count each day, week (from Monday) or month, in UTC.",
)
@format_option(STATS_FORMATS, "An aligned table to read, or JSON or CSV for another program.")
def stats_command(since: datetime | None, until: datetime | None, by: str | None, fmt: str) -> None:
    """Count how readers chose: Accept All, Reject All and custom choices, the opt-in rate of
    each optional category and each service, the share made under GPC and the choices per
    notice language; in all, per registry revision and, with --by, per period.

    Counted by the database in one grouped pass, in constant memory. A GPC opt-out (the
    signal revising a stored choice) is counted but is not a choice; a withdrawal is a custom
    choice. See globalupdates/consent/reporting/stats.py for how each record counts.
    """
    check_range(since, until)
    registry = engine().registry
    keys = [category.key for category in registry.optional_categories]
    services = [(service.key, service.category) for service in registry.services]
    try:
        stats = consent_stats(
            keys, since=since, until=until, by=by, languages=registry.languages, services=services
        )
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot count the records: {error_summary(error)}") from None
    if stats.is_empty:
        click.echo(f"No consent records were made {range_text(stats)}.", err=True)
        if fmt == "table":
            return
    click.echo(STATS_FORMATS[fmt](stats), nl=False)


@click.command("report")
@with_appcontext
@output_option("HTML file")
@SINCE
@UNTIL
@click.option(
    "--by",
    type=click.Choice(PERIODS),
    default="day",
    show_default=True,
    help="The period each chart point covers (UTC).",
)
@click.option(
    "--allow-unkeyed",
    is_flag=True,
    help="As for verify: records made before proof keys, only as the chain's leading run, "
    "do not fail the chain's check.",
)
def report_command(
    output: str, since: datetime | None, until: datetime | None, by: str, allow_unkeyed: bool
) -> None:
    """Write one self-contained HTML page (no script, nothing loaded from elsewhere): the
    figures of `stats`, charts of them over time, whether the chain verified and when the
    report was made."""
    from .html_report import build_report  # pygal: 2 MB and 50 ms that no serving process needs

    check_range(since, until)
    try:
        page, status = build_report(since=since, until=until, by=by, allow_unkeyed=allow_unkeyed)
    except (ProofKeyError, SQLAlchemyError) as error:
        raise click.ClickException(f"cannot make the report: {error_summary(error)}") from None
    try:
        write_lines(iter([page]), output)
    except OSError as error:
        raise click.ClickException(f"cannot write the report: {error}") from None
    if output != "-":
        click.echo(f"Report written to {output}. {status.summary}")
    if not status.verified:
        raise click.ClickException("the chain did NOT verify; the report lists the problems found")
