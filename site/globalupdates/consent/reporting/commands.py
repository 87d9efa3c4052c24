"""Operator commands for the proof of consent, under ``flask consent``: export, show, verify,
checkpoint, prune, rotate-key, stats, report, audit, audit-data and nginx-regions.

Each group of commands lives beside what it shares: the records (``record_commands``), the
chain and its keys (``chain_commands``), the figures (``stats_commands``).
"""

from __future__ import annotations

from flask import Blueprint

from . import audit_commands, chain_commands, nginx_regions, record_commands, stats_commands

bp = Blueprint("consent_cli", __name__, cli_group="consent")

for command in (
    record_commands.export_command,
    record_commands.show_command,
    chain_commands.verify_command,
    chain_commands.checkpoint_command,
    chain_commands.rotate_key_command,
    record_commands.prune_command,
    stats_commands.stats_command,
    stats_commands.report_command,
    audit_commands.audit_command,
    audit_commands.audit_data_group,
    nginx_regions.nginx_regions_command,
):
    bp.cli.add_command(command)
