"""Operator commands for the proof of consent: export, show, verify, prune."""

from __future__ import annotations

import csv
import io
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

import click
from flask import Blueprint

from .chain import iter_records, prune_before, verify_chain
from .records import EXPORT_FIELDS, ConsentRecord, utc_text

bp = Blueprint("consent_cli", __name__, cli_group="consent")


class UtcMoment(click.ParamType):
    """A date (``2026-05-01``) or an ISO date and time; without a zone it is read as UTC."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(
                f"{value!r} is not a date like 2026-05-01 or 2026-05-01T12:00:00Z", param, ctx
            )
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UTC_MOMENT = UtcMoment()


def json_lines(records: Iterator[ConsentRecord]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record.as_export(), separators=(",", ":")) + "\n"


def csv_lines(records: Iterator[ConsentRecord]) -> Iterator[str]:
    """One CSV row at a time; categories are joined with spaces inside their cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def take() -> str:
        line = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return line

    writer.writerow(EXPORT_FIELDS)
    yield take()
    for record in records:
        row = record.as_export()
        row["categories"] = " ".join(row["categories"])
        row["gpc"] = "true" if row["gpc"] else "false"
        writer.writerow([row[field] for field in EXPORT_FIELDS])
        yield take()


def write_lines(lines: Iterator[str], output: str) -> None:
    if output == "-":
        write_all(lines, sys.stdout)
        return
    with open(output, "w", encoding="utf-8", newline="") as handle:
        write_all(lines, handle)


def write_all(lines: Iterator[str], handle: IO[str]) -> None:
    for line in lines:
        handle.write(line)


@bp.cli.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    help="File to write (default: standard output).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines or CSV.",
)
@click.option("--since", type=UTC_MOMENT, help="Only records made at or after this UTC time.")
@click.option("--until", type=UTC_MOMENT, help="Only records made before this UTC time.")
def export_command(output: str, fmt: str, since: datetime | None, until: datetime | None) -> None:
    """Stream consent records, oldest first, in constant memory."""
    records = iter_records(since=since, until=until)
    write_lines(csv_lines(records) if fmt == "csv" else json_lines(records), output)


@bp.cli.command("show")
@click.argument("consent_id")
def show_command(consent_id: str) -> None:
    """Print the history of one reader's consent id, oldest first."""
    try:
        wanted = str(uuid.UUID(consent_id))
    except ValueError:
        raise click.BadParameter(
            "a consent id looks like 3f2c...-...; see the reader's page"
        ) from None
    found = 0
    for record in iter_records(consent_id=wanted):
        found += 1
        click.echo(
            f"#{record.id}  {utc_text(record.created_at)}  {record.action:<12} "
            f"{', '.join(record.categories)}  (revision {record.revision}, "
            f"GPC {'present' if record.gpc else 'absent'}, notice {record.notice_hash[:12]})"
        )
    if not found:
        raise click.ClickException(f"no consent records for {wanted}")


@bp.cli.command("verify")
def verify_command() -> None:
    """Check the hash chain; name the first record that was altered or removed."""
    report = verify_chain()
    if not report.intact:
        raise click.ClickException(
            f"chain broken after {report.checked} good record(s): {report.problem}"
        )
    click.echo(f"Chain intact: {report.checked} record(s) verified.")


@bp.cli.command("prune")
@click.option("--before", type=UTC_MOMENT, required=True, help="Delete records made before this.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def prune_command(before: datetime, yes: bool) -> None:
    """Delete records older than the retention date; an anchor keeps the rest verifiable."""
    if not yes:
        click.confirm(f"Delete every consent record made before {before.isoformat()}?", abort=True)
    result = prune_before(before)
    if result.deleted == 0:
        click.echo("Nothing to prune.")
        return
    click.echo(
        f"Pruned {result.deleted} record(s). The chain now starts from anchor hash "
        f"{result.anchor_hash}; keep that value somewhere outside this database."
    )
