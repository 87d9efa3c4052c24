"""``flask features prune``: delete page views and timings older than the retention period."""

from __future__ import annotations

import click
from flask import Blueprint, current_app

from .retention import delete_measurements_before, retention_cutoff

bp = Blueprint("features_cli", __name__, cli_group="features")


@bp.cli.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    default=None,
    help="Override PAGE_MEASUREMENT_RETENTION_DAYS for this run.",
)
def prune_command(older_than_days: int | None) -> None:
    """Delete page views and page timings older than the retention period."""
    days = older_than_days or current_app.config["PAGE_MEASUREMENT_RETENTION_DAYS"]
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise click.UsageError("PAGE_MEASUREMENT_RETENTION_DAYS must be a positive whole number.")
    cutoff = retention_cutoff(days)
    views, timings = delete_measurements_before(cutoff)
    click.echo(
        f"Deleted {views} page views and {timings} page timings made before "
        f"{cutoff.isoformat(timespec='seconds')}Z ({days} days)."
    )
