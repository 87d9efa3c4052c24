"""The reader's choice as a value: the only code that reads or writes ``session["consent"]``."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .registry import Registry

SESSION_KEY = "consent"


@dataclass(frozen=True)
class StoredChoice:
    consent_id: str
    categories: frozenset[str]
    made_at: datetime
    revision: int
    gpc: bool = False  # whether the reader's browser sent GPC when this choice was made


@dataclass(frozen=True)
class ConsentState:
    """What one request may do, resolved once before the view and asked by every later step."""

    granted: frozenset[str]
    choice: StoredChoice | None
    gpc: bool
    gpc_revised: StoredChoice | None = None  # the stored choice as GPC revises it, when it does

    @property
    def has_choice(self) -> bool:
        return self.choice is not None

    @property
    def show_banner(self) -> bool:
        return self.choice is None

    @property
    def consent_id(self) -> str | None:
        return self.choice.consent_id if self.choice else None

    def is_granted(self, key: str) -> bool:
        return key in self.granted


def gpc_signal(header_value: str | None) -> bool:
    """Global Privacy Control counts only when the header is exactly "1"."""
    return header_value == "1"


def read_stored_choice(session: MutableMapping[str, Any]) -> StoredChoice | None:
    raw = session.get(SESSION_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        categories = raw["categories"]
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            return None
        made_at = datetime.fromtimestamp(int(raw["made_at"]), UTC)
        return StoredChoice(
            consent_id=str(uuid.UUID(str(raw["id"]))),
            categories=frozenset(categories),
            made_at=made_at,
            revision=int(raw["revision"]),
            gpc=raw.get("gpc") is True,
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def write_stored_choice(session: MutableMapping[str, Any], choice: StoredChoice) -> None:
    session[SESSION_KEY] = {
        "id": choice.consent_id,
        "categories": sorted(choice.categories),
        "made_at": int(choice.made_at.timestamp()),
        "revision": choice.revision,
        "gpc": choice.gpc,
    }


def is_current(
    choice: StoredChoice, registry: Registry, now: datetime, lifetime: timedelta
) -> bool:
    return (
        choice.revision == registry.revision
        and now - lifetime < choice.made_at <= now + timedelta(minutes=5)
    )


def resolve(
    session: MutableMapping[str, Any],
    registry: Registry,
    *,
    now: datetime,
    lifetime: timedelta,
    gpc: bool,
) -> ConsentState:
    """The reader's state: their current stored choice, with a GPC signal applied to it.

    A pure function of the session and the request's signal; recording a revision that GPC
    makes is the caller's business (``gpc.record_gpc_opt_out_once``).
    """
    stored = read_stored_choice(session)
    if stored is not None and not is_current(stored, registry, now, lifetime):
        stored = None
    revised = gpc_opt_out(stored, registry) if gpc and stored is not None else None
    effective = revised or stored
    granted = registry.required_keys
    if effective is not None:
        granted = granted | (effective.categories & registry.optional_keys)
    return ConsentState(granted=granted, choice=effective, gpc=gpc, gpc_revised=revised)


def new_choice(
    categories: frozenset[str],
    registry: Registry,
    now: datetime,
    consent_id: str | None,
    gpc: bool = False,
) -> StoredChoice:
    """A new choice keeps the reader's consent id, so their history stays one thread."""
    return StoredChoice(
        consent_id=consent_id or str(uuid.uuid4()),
        categories=(categories & registry.optional_keys) | registry.required_keys,
        made_at=now,
        revision=registry.revision,
        gpc=gpc,
    )


def gpc_opt_out(choice: StoredChoice, registry: Registry) -> StoredChoice | None:
    """The stored choice with GPC applied, or None when the signal changes nothing.

    A grant of a ``gpc_opt_out`` category made while the browser sent no GPC signal gives
    way to the signal. A grant made while the signal was present was the reader's own,
    explicit choice on the preferences page, and stands.
    """
    if choice.gpc:
        return None
    withdrawn = choice.categories & registry.gpc_opt_out_keys
    if not withdrawn:
        return None
    return replace(choice, categories=choice.categories - withdrawn, gpc=True)
