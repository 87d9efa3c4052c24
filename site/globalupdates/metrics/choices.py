"""Counting what the proof chain commits: choices by action and edition, and by action and
regime, grants by category and by service, and the batches themselves.

``consent.proof.chain.ChainWriter`` calls ``count_committed`` once a batch is committed, with
the fields of the records it stored (a conditional record left out is not among them), so the
counters add up to the records in the proof log and never count a record that was rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..consent.model.record_actions import SAVE
from .instruments import (
    AUDIT_CHOICES,
    CHAIN_APPEND_DURATION,
    CHAIN_APPENDS,
    CHAIN_BATCH_SIZE,
    CHOICE_GRANTS,
    CHOICE_SERVICE_GRANTS,
    CHOICES,
    CHOICES_BY_REGIME,
)

# A record's ``save`` is what the dashboard and the consent managers call a custom choice.
ACTION_NAMES = {SAVE: "custom"}
EDITION_BEFORE_LANGUAGES = "en"  # records made before languages were recorded were English
REGIME_BEFORE_REGIONS = "opt-in"  # records made before regions were all made under opt-in


def count_committed(
    records: Sequence[Mapping[str, Any]], seconds: float, audit_records: int = 0
) -> None:
    """``records`` are readers' records; the cookie audit's are only counted, apart, so that
    the choice and grant counters say what readers chose."""
    CHAIN_APPEND_DURATION.observe(seconds)
    if audit_records:
        AUDIT_CHOICES.inc(audit_records)
    if not records and not audit_records:
        return
    CHAIN_BATCH_SIZE.observe(len(records) + audit_records)
    CHAIN_APPENDS.inc(len(records) + audit_records)
    for fields in records:
        action = ACTION_NAMES.get(fields["action"], fields["action"])
        CHOICES.labels(action, fields.get("language") or EDITION_BEFORE_LANGUAGES).inc()
        CHOICES_BY_REGIME.labels(action, fields.get("regime") or REGIME_BEFORE_REGIONS).inc()
        for category in fields["categories"]:
            CHOICE_GRANTS.labels(category).inc()
        for service in fields.get("services") or ():
            CHOICE_SERVICE_GRANTS.labels(service).inc()
