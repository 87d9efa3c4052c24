"""``flask consent verify``, ``checkpoint`` and ``rotate-key``: the operator checks the chain
of records against its proof keys, writes its head down, and starts a new key."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from ...database import error_summary
from ...extensions import db
from ..proof.checkpoints import (
    CheckpointFileError,
    KeptCheckpoint,
    read_checkpoints,
    take_checkpoint,
)
from ..proof.next_signer import key_file_problem, key_ids_in_use
from ..proof.proof_keys import ProofKeyError, key_file, rotate_key
from ..proof.stored_rows import UnreadableRecord
from ..proof.verification import ChainReport, verify_chain


@click.command("verify")
@with_appcontext
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
    click.echo(f"Consent regimes: {report.describe_regimes()}")
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


@click.command("checkpoint")
@with_appcontext
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


@click.command("rotate-key")
@with_appcontext
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
