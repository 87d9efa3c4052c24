"""Global Privacy Control beyond the first request: applying the signal to a stored choice,
and the well-known resource that tells other parties this site honours it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cachetools import FIFOCache
from flask import Blueprint, current_app, jsonify, session
from flask.typing import ResponseReturnValue

from ...database import WriteBatchFailed
from ..model.choice import StoredChoice, write_stored_choice
from ..model.record_actions import GPC_OPT_OUT
from ..model.registry import Registry
from ..proof.chain import Condition, NewestRecord, append_to_chain
from .engine import shown_registry

bp = Blueprint("gpc", __name__)


RECORDED_MEMORY = 4096


@dataclass
class RecordedRevisions:
    """The stored choices this worker has seen GPC's opt-out recorded for, the newest
    ``RECORDED_MEMORY`` of them, oldest out first."""

    recorded: FIFOCache[tuple[str, datetime], None] = field(
        default_factory=lambda: FIFOCache(RECORDED_MEMORY)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __contains__(self, key: tuple[str, datetime]) -> bool:
        with self.lock:
            return key in self.recorded

    def remember(self, key: tuple[str, datetime]) -> None:
        with self.lock:
            self.recorded[key] = None


def record_gpc_opt_out_once(revised: StoredChoice, registry: Registry, regime: str) -> None:
    """Record that GPC revised a stored choice, and store the revision in the session.

    A stored choice is revised once: the record is appended only if the reader's newest
    record is not already this opt-out, and that is judged inside the chain's lock, counting
    the records earlier in the same batch, so however many requests replay one cookie with
    ``Sec-GPC: 1`` at once, one record is written. Each worker also remembers the choices it
    has seen recorded, so a replay costs at most one append per worker. If the record cannot
    be written, the signal is still honoured (the state already applies it) but the session
    is left as it was, so the revision is tried again on the next request.
    """
    key = (revised.consent_id, revised.made_at)
    remembered = recorded_revisions()
    if key not in remembered:
        language = shown_registry().language
        try:
            append_to_chain(
                consent_id=revised.consent_id,
                created_at=datetime.now(UTC),
                action=GPC_OPT_OUT,
                categories=registry.in_registry_order(revised.categories),
                revision=registry.revision,
                notice_hash=registry.notice_hash_for(language),
                gpc=True,
                language=language,
                regime=regime,
                services=registry.services_in_registry_order(revised.services or frozenset()),
                skip_when=already_opted_out(revised.categories),
            )
        except WriteBatchFailed:
            current_app.logger.warning("a GPC opt-out was not recorded; honouring it unrecorded")
            return
        remembered.remember(key)
    write_stored_choice(session, revised)


def recorded_revisions() -> RecordedRevisions:
    return current_app.extensions.setdefault("gpc_revisions_recorded", RecordedRevisions())


def already_opted_out(categories: frozenset[str]) -> Condition:
    """True of a reader whose newest record already is this very opt-out: a new choice made
    since then is newer, so GPC revising that one is recorded again."""

    def holds(newest: NewestRecord | None) -> bool:
        return (
            newest is not None and newest.action == GPC_OPT_OUT and newest.categories == categories
        )

    return holds


@bp.get("/.well-known/gpc.json")
def gpc_support() -> ResponseReturnValue:
    """The GPC specification's support resource, readable by any site or tool that asks."""
    response = jsonify(gpc=True, lastUpdate=current_app.config["GPC_LAST_UPDATE"])
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
