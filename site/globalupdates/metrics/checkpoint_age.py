"""``globalupdates_checkpoint_age_seconds``: how old the newest checkpoint is that the chain
still extends, read from the operator's checkpoint file (``CONSENT_CHECKPOINT_FILE``) when a
scrape asks for it.

Each checkpoint, newest first, is checked as ``flask consent verify --checkpoint`` checks it
(the record it names still has its hash, or a signed anchor says it was pruned); the first
that holds gives the age. No checkpoint file set: no gauge. A file that cannot be read, or no
checkpoint that holds: the gauge is absent too and the scrape logs why, so an alert on
``absent(globalupdates_checkpoint_age_seconds)`` or on its value catches both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from ..consent.proof.checkpoints import KeptCheckpoint, read_checkpoints
from ..consent.proof.proof_keys import ProofKeyError, load_keyring
from ..consent.proof.stored_rows import tolerant_text
from ..consent.proof.verification import check_anchors, check_checkpoint
from ..extensions import db

NAME = "globalupdates_checkpoint_age_seconds"


def checkpoint_age_metric(app: Flask) -> GaugeMetricFamily | None:
    path = app.config.get("CONSENT_CHECKPOINT_FILE")
    if not path:
        return None
    try:
        with open(path, "rb") as lines:
            kept = read_checkpoints(lines, Path(path).name)
        held = newest_held(app, kept)
    except (OSError, ValueError, SQLAlchemyError, ProofKeyError) as error:
        app.logger.warning("metrics: no checkpoint age: %s", error)
        return None
    if held is None:
        app.logger.warning("metrics: no checkpoint age: the chain extends none in %s", path)
        return None
    taken = datetime.fromisoformat(held.checkpoint.taken_at.replace("Z", "+00:00"))
    age = max(0.0, (datetime.now(UTC) - taken).total_seconds())
    gauge = GaugeMetricFamily(
        NAME, "Seconds since the newest checkpoint the proof chain still extends was taken"
    )
    gauge.add_metric([], age)
    return gauge


def newest_held(app: Flask, kept: list[KeptCheckpoint]) -> KeptCheckpoint | None:
    keyring = load_keyring(app, create=False)
    newest_first = sorted(kept, key=lambda item: item.checkpoint.taken_at, reverse=True)
    with db.engine.connect() as connection, tolerant_text(connection):
        anchors = check_anchors(connection, keyring, lambda _message: None)
        for candidate in newest_first:
            problems: list[str] = []
            check_checkpoint(connection, candidate, anchors, problems.append)
            if not problems:
                return candidate
    return None
