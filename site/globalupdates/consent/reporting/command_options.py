"""What the ``flask consent`` commands share: UTC times as options, a range of them, the
format to write and where to write it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

import click

from ..proof.records import utc_text


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


def format_option(
    formats: Iterable[str], help_text: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format``: one of ``formats``, an aligned ``table`` by default; the command receives
    it as ``fmt`` (``format`` is Python's own)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(formats)),
        default="table",
        show_default=True,
        help=help_text,
    )


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise click.UsageError(
            f"--since ({utc_text(since)}) must come before --until ({utc_text(until)})"
        )
