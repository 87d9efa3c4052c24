"""``flask consent export``, ``show`` and ``prune``: the operator reads the records as stored,
or deletes those past their retention."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from ...database import error_summary
from ...extensions import db
from ..proof.chain import prune_before
from ..proof.proof_keys import ProofKeyError
from ..proof.records import EXPORT_FIELDS, as_utc, utc_text
from ..proof.stored_rows import RECORDS, UnreadableRecord, readable_records
from .command_options import SINCE, UNTIL, UTC_MOMENT, output_option, write_lines

Fields = dict[str, Any]


def export_row(fields: Fields) -> Fields:
    """A record's parsed fields in ``EXPORT_FIELDS`` order, the time as UTC text."""
    row = {name: fields[name] for name in EXPORT_FIELDS}
    row["created_at"] = utc_text(fields["created_at"])
    return row


def json_lines(records: Iterator[Fields]) -> Iterator[str]:
    for record in records:
        yield json.dumps(export_row(record), separators=(",", ":")) + "\n"


def csv_lines(records: Iterator[Fields]) -> Iterator[str]:
    """One CSV row at a time; categories and services are joined with spaces inside their
    cell (an empty services cell on a record made before services could be chosen)."""
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
        row = export_row(record)
        row["categories"] = " ".join(row["categories"])
        if row.get("services") is not None:
            row["services"] = " ".join(row["services"])
        row["gpc"] = "true" if row["gpc"] else "false"
        writer.writerow([row[field] for field in EXPORT_FIELDS])
        yield take()


@click.command("export")
@with_appcontext
@output_option("File")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines or CSV.",
)
@SINCE
@UNTIL
def export_command(output: str, fmt: str, since: datetime | None, until: datetime | None) -> None:
    """Stream consent records, oldest first, in constant memory."""
    conditions = []
    if since is not None:
        conditions.append(RECORDS.c.created_at >= as_utc(since).replace(tzinfo=None))
    if until is not None:
        conditions.append(RECORDS.c.created_at < as_utc(until).replace(tzinfo=None))
    with stored_records("the export", *conditions) as records:
        write_lines(csv_lines(records) if fmt == "csv" else json_lines(records), output)


@contextmanager
def stored_records(what: str, *conditions: Any) -> Iterator[Iterator[Fields]]:
    """The records matching ``conditions``, read as stored. A field no longer in its column's
    form (which only someone writing the database by hand can cause) ends the command with
    an error naming the record and the field; ``verify`` lists every such record."""
    try:
        with db.engine.connect() as connection:
            yield readable_records(connection, *conditions)
    except UnreadableRecord as error:
        raise click.ClickException(
            f"{what} stopped at a record that cannot be read: {error}; "
            "`flask consent verify` lists every such record"
        ) from None
    except SQLAlchemyError as error:
        raise click.ClickException(
            f"{what} could not read the records: {error_summary(error)}"
        ) from None


def services_text(services: list[str] | None) -> str:
    """A record's services for ``show``: those it names, or every one of its categories' for
    a record made before services could be chosen."""
    if services is None:
        return "services of every category"
    return f"services {', '.join(services) or 'none'}"


@click.command("show")
@with_appcontext
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
    with stored_records("the history", RECORDS.c.consent_id == wanted) as records:
        for record in records:
            found += 1
            click.echo(
                f"#{record['id']}  {utc_text(record['created_at'])}  {record['action']:<12} "
                f"{', '.join(record['categories'])}  "
                f"{services_text(record.get('services'))}  (revision {record['revision']}, "
                f"GPC {'present' if record['gpc'] else 'absent'}, "
                f"notice {record['notice_hash'][:12]}, "
                f"language {record['language'] or 'not recorded'}, "
                f"regime {record['regime'] or 'not recorded'})"
            )
    if not found:
        raise click.ClickException(f"no consent records for {wanted}")


@click.command("prune")
@with_appcontext
@click.option(
    "--before",
    type=UTC_MOMENT,
    help="Delete records made before this. Default: what the retention period has passed "
    "(CONSENT_RECORD_RETENTION_DAYS after the choice lapsed, at the latest "
    "CONSENT_LIFETIME_DAYS after it was made).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def prune_command(before: datetime | None, yes: bool) -> None:
    """Delete records past their retention; a signed anchor keeps the rest verifiable."""
    if before is None:
        before = retention_cutoff(datetime.now(UTC))
        click.echo(f"Records past their retention period were made before {utc_text(before)}.")
    if not yes:
        click.confirm(f"Delete every consent record made before {before.isoformat()}?", abort=True)
    try:
        result = prune_before(before)
    except (ProofKeyError, SQLAlchemyError) as error:
        raise click.ClickException(f"cannot prune: {error_summary(error)}") from None
    if result.deleted == 0:
        click.echo("Nothing to prune.")
        return
    click.echo(
        f"Pruned {result.deleted} record(s). The chain now starts from anchor hash "
        f"{result.anchor_hash}; keep that value somewhere outside this database."
    )


def retention_cutoff(now: datetime) -> datetime:
    """A record is kept CONSENT_RECORD_RETENTION_DAYS after its choice stopped counting, and
    a choice counts at most CONSENT_LIFETIME_DAYS; so whatever was made before both, counted
    back from now, is past its retention whether a newer choice replaced it or it lapsed."""
    config = current_app.config
    kept = int(config["CONSENT_RECORD_RETENTION_DAYS"]) + int(config["CONSENT_LIFETIME_DAYS"])
    return now - timedelta(days=kept)
