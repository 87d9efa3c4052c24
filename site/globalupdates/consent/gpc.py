"""Global Privacy Control beyond the first request: applying the signal to a stored choice,
and the well-known resource that tells other parties this site honours it."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, session
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from .chain import append_to_chain
from .choice import ConsentState, StoredChoice, gpc_opt_out, write_stored_choice
from .registry import Registry

bp = Blueprint("gpc", __name__)

GPC_OPT_OUT_ACTION = "gpc_opt_out"


def apply_gpc_to_stored_choice(
    state: ConsentState, registry: Registry, now: datetime
) -> StoredChoice | None:
    """When GPC arrives and the stored choice grants what GPC refuses, revise it and record it.

    The revised choice keeps its consent id, revision and time (GPC does not renew consent).
    If the record cannot be written, the signal is still honoured for this response but the
    stored choice is left as it was, so the revision is tried again on the next request.
    """
    if not state.gpc or state.choice is None:
        return None
    revised = gpc_opt_out(state.choice, registry)
    if revised is None:
        return None
    try:
        append_to_chain(
            consent_id=revised.consent_id,
            created_at=now,
            action=GPC_OPT_OUT_ACTION,
            categories=registry.in_registry_order(revised.categories),
            revision=registry.revision,
            notice_hash=registry.notice_hash,
            gpc=True,
        )
    except SQLAlchemyError:
        current_app.logger.exception("could not record a GPC opt-out; honouring it unrecorded")
        return revised
    write_stored_choice(session, revised)
    return revised


@bp.get("/.well-known/gpc.json")
def gpc_support() -> ResponseReturnValue:
    """The GPC specification's support resource, readable by any site or tool that asks."""
    response = jsonify(gpc=True, lastUpdate=current_app.config["GPC_LAST_UPDATE"])
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
