"""Operator commands for the proof of consent: export, show, verify, checkpoint, prune,
rotate-key, stats and report."""

from __future__ import annotations

import csv
import io
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import click
from flask import Blueprint, current_app
from sqlalchemy.exc import SQLAlchemyError

from ...database import error_summary
from ...extensions import db
from ..proof.chain import prune_before
from ..proof.checkpoints import (
    CheckpointFileError,
    KeptCheckpoint,
    read_checkpoints,
    take_checkpoint,
)
from ..proof.next_signer import key_file_problem, key_ids_in_use
from ..proof.proof_keys import ProofKeyError, key_file, rotate_key
from ..proof.records import EXPORT_FIELDS, as_utc, utc_text
from ..proof.stored_rows import RECORDS, UnreadableRecord, readable_records
from ..proof.verification import (
    ChainReport,
    verify_chain,
)
from ..web.engine import engine
from .stats import PERIODS, ConsentStats, as_csv, as_json, as_table, consent_stats, range_text

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
        row = export_row(record)
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


SINCE = click.option(
    "--since", type=UTC_MOMENT, help="Only records made at or after this UTC time."
)
UNTIL = click.option("--until", type=UTC_MOMENT, help="Only records made before this UTC time.")


def output_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--output``/``-o``: a file to write, standard output by default (or ``-``)."""
    return click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True),
        default="-",
        help=f"{what} to write (default: standard output).",
    )


@bp.cli.command("export")
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
    with stored_records("the history", RECORDS.c.consent_id == wanted) as records:
        for record in records:
            found += 1
            click.echo(
                f"#{record['id']}  {utc_text(record['created_at'])}  {record['action']:<12} "
                f"{', '.join(record['categories'])}  (revision {record['revision']}, "
                f"GPC {'present' if record['gpc'] else 'absent'}, "
                f"notice {record['notice_hash'][:12]}, "
                f"language {record['language'] or 'not recorded'})"
            )
    if not found:
        raise click.ClickException(f"no consent records for {wanted}")


@bp.cli.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A file written by `flask consent checkpoint`: the chain must still extend each "
    "checkpoint in it.",
)
@click.option(
    "--allow-unkeyed",
    is_flag=True,
    help="Accept records made before proof keys (a site that kept records from then), only "
    "as the chain's leading run: before its first keyed record, and followed by one once the "
    "site has proof keys. Without it, any record with no proof key fails verification.",
)
def verify_command(checkpoint_file: str | None, allow_unkeyed: bool) -> None:
    """Check every record and anchor against its proof key, and every link between them.

    Prints where the chain starts (genesis, or the anchor a prune left), each problem as
    it is found (record or anchor id, and the field when one is malformed), the number of
    records checked and the head hash. Exits with status 1 when anything is wrong.
    Records made before proof keys are counted and said to be unprotected by a key; they
    fail verification unless ``--allow-unkeyed`` says the site has such records, since
    rewriting every record without a key is the one change the chain cannot show itself.
    """
    checkpoints = kept_checkpoints(checkpoint_file) if checkpoint_file else []
    try:
        report = verify_chain(checkpoints=checkpoints, on_problem=print_problem)
    except (ProofKeyError, SQLAlchemyError) as error:
        raise click.ClickException(f"cannot verify the chain: {error_summary(error)}") from None
    print_summary(report, checkpoint_file)
    if report.unkeyed and not allow_unkeyed:
        raise click.ClickException(
            f"{report.unkeyed} record(s) carry no proof key. Only a site that kept records "
            "from before proof keys has any; if yours did, run verify --allow-unkeyed. "
            "Otherwise the chain may have been rewritten without the key."
        )
    if not report.intact:
        raise click.ClickException(
            f"chain broken: {report.problem_count} problem(s) found in "
            f"{report.checked} record(s) checked"
        )
    click.echo(f"Chain intact: {report.checked} record(s) verified.")


def kept_checkpoints(path: str) -> list[KeptCheckpoint]:
    try:
        with open(path, "rb") as handle:
            return read_checkpoints(handle, path)
    except (OSError, CheckpointFileError) as error:
        raise click.ClickException(f"cannot use the checkpoints in {path}: {error}") from None


def print_problem(message: str) -> None:
    click.echo(f"PROBLEM: {message}")


def print_summary(report: ChainReport, checkpoint_file: str | None) -> None:
    click.echo(f"Start: {report.describe_start()}")
    head = f" (record {report.head_id})" if report.head_id is not None else " (no records)"
    click.echo(f"Head hash: {report.head_hash}{head}")
    click.echo(f"Records checked: {report.checked}")
    click.echo(f"Notice languages: {report.describe_languages()}")
    click.echo(f"Proof keys: {', '.join(report.key_ids) or 'none found'}")
    if report.first_keyed_id is not None and not report.key_ids:
        click.echo(
            f"No proof key was found in {key_file(current_app)} or CONSENT_PROOF_KEY: run "
            "verify with the site's own instance folder and settings."
        )
    if report.unkeyed:
        vouched = (
            f"only the link from keyed record {report.first_keyed_id} vouches for them"
            if report.first_keyed_id is not None
            else "no keyed record follows them yet"
        )
        click.echo(
            f"Not protected by a key: {report.unkeyed} record(s) made before proof keys; {vouched}."
        )
    if checkpoint_file:
        click.echo(f"Checkpoints checked: {report.checkpoints}, from {checkpoint_file}")


@bp.cli.command("checkpoint")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Append the checkpoint to this file (default: print it).",
)
def checkpoint_command(output: str | None) -> None:
    """Record the chain's head (record id, hash, record count, UTC time) as one JSON line.

    Keep the file somewhere the database's writers cannot reach, and later pass it to
    `flask consent verify --checkpoint FILE`: removing the newest records, which the chain
    alone cannot show, then fails verification. Pruning since does not.
    """
    try:
        point = take_checkpoint()
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot read the chain: {error_summary(error)}") from None
    except UnreadableRecord as error:
        raise click.ClickException(
            f"cannot take a checkpoint: {error}; `flask consent verify` names every such field"
        ) from None
    if output is None:
        click.echo(point.as_json())
        return
    try:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(point.as_json() + "\n")
    except OSError as error:
        raise click.ClickException(f"cannot write the checkpoint: {error}") from None
    click.echo(f"Checkpoint at record {point.record_id} appended to {output}.")


@bp.cli.command("rotate-key")
def rotate_key_command() -> None:
    """Start signing with a new proof key; records signed by older keys still verify.

    Adds a line 'key_id secret' to the instance folder's consent_proof_keys file (made,
    owner-only, if no record is keyed yet); its last line signs, with an id no key has had.
    Never delete a line from that file. Refused while the file cannot sign (missing,
    emptied or changed after keyed records were made: restore it first). When
    FLASK_CONSENT_PROOF_KEY (key_id:secret) is set it signs instead, so rotate it there.
    The site's workers sign with the new key from their next choice on.
    """
    problem = key_file_problem(current_app)
    if problem is not None:
        raise click.ClickException(f"cannot rotate the proof key: {problem}")
    try:
        with db.engine.connect() as connection:
            used = key_ids_in_use(connection)
        key = rotate_key(current_app, used)
    except (ProofKeyError, OSError, SQLAlchemyError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"New signing key {key.key_id} in {key_file(current_app)}; records signed by older "
        "keys still verify, and the site's workers sign with it from their next choice on."
    )


@bp.cli.command("prune")
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


STATS_FORMATS: dict[str, Callable[[ConsentStats], str]] = {
    "table": as_table,
    "json": as_json,
    "csv": as_csv,
}


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise click.UsageError(
            f"--since ({utc_text(since)}) must come before --until ({utc_text(until)})"
        )


@bp.cli.command("stats")
@SINCE
@UNTIL
@click.option(
    "--by",
    type=click.Choice(PERIODS),
    help="Also count each day, week (from Monday) or month, in UTC.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(STATS_FORMATS)),
    default="table",
    show_default=True,
    help="An aligned table to read, or JSON or CSV for another program.",
)
def stats_command(since: datetime | None, until: datetime | None, by: str | None, fmt: str) -> None:
    """Count how readers chose: Accept All, Reject All and custom choices, the opt-in rate of
    each optional category, the share made under GPC and the choices per notice language; in
    all, per registry revision and, with --by, per period.

    Counted by the database in one grouped pass, in constant memory. A GPC opt-out (the
    signal revising a stored choice) is counted but is not a choice; a withdrawal is a custom
    choice. See globalupdates/consent/stats.py for how each record counts.
    """
    check_range(since, until)
    registry = engine().registry
    keys = [category.key for category in registry.optional_categories]
    try:
        stats = consent_stats(keys, since=since, until=until, by=by, languages=registry.languages)
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot count the records: {error_summary(error)}") from None
    if stats.is_empty:
        click.echo(f"No consent records were made {range_text(stats)}.", err=True)
        if fmt == "table":
            return
    click.echo(STATS_FORMATS[fmt](stats), nl=False)


@bp.cli.command("report")
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
