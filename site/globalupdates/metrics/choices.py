"""Counting what the proof chain commits: choices by action and edition, grants by category
and by service, and the batches themselves.

``consent.proof.chain.ChainWriter`` calls ``count_committed`` once a batch is committed, with
the fields of the records it stored (a conditional record left out is not among them), so the
counters add up to the records in the proof log and never count a record that was rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..consent.model.record_actions import SAVE
from .instruments import (
    CHAIN_APPEND_DURATION,
    CHAIN_APPENDS,
    CHAIN_BATCH_SIZE,
    CHOICE_GRANTS,
    CHOICE_SERVICE_GRANTS,
    CHOICES,
)

# A record's ``save`` is what the dashboard and the consent managers call a custom choice.
ACTION_NAMES = {SAVE: "custom"}
EDITION_BEFORE_LANGUAGES = "en"  # records made before languages were recorded were English


def count_committed(records: Sequence[Mapping[str, Any]], seconds: float) -> None:
    CHAIN_APPEND_DURATION.observe(seconds)
    if not records:
        return
    CHAIN_BATCH_SIZE.observe(len(records))
    CHAIN_APPENDS.inc(len(records))
    for fields in records:
        action = ACTION_NAMES.get(fields["action"], fields["action"])
        CHOICES.labels(action, fields.get("language") or EDITION_BEFORE_LANGUAGES).inc()
        for category in fields["categories"]:
            CHOICE_GRANTS.labels(category).inc()
        for service in fields.get("services") or ():
            CHOICE_SERVICE_GRANTS.labels(service).inc()
