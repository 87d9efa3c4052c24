"""Operator commands for the proof of consent."""

from __future__ import annotations

import sys

import click
from flask import Blueprint

from .records import export_lines

bp = Blueprint("consent_cli", __name__, cli_group="consent")


@bp.cli.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    help="File to write (default: standard output).",
)
def export_command(output: str) -> None:
    """Write every consent record as JSON Lines, oldest first."""
    if output == "-":
        sys.stdout.writelines(export_lines())
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.writelines(export_lines())
