"""The reader's choice as a value: the only code that reads or writes ``session["consent"]``."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .regions import OPT_IN, OPT_OUT, STRICTEST, Regime
from .registry import Registry, Service

SESSION_KEY = "consent"


@dataclass(frozen=True)
class StoredChoice:
    consent_id: str
    categories: frozenset[str]
    made_at: datetime
    revision: int
    gpc: bool = False  # whether the reader's browser sent GPC when this choice was made
    # Categories on only because an opt-out regime runs them until refused: never consented
    # to, so an opt-in place does not count them (``resolve``).
    defaulted: frozenset[str] = frozenset()
    # The services granted inside the granted categories; None in a choice stored before
    # services could be chosen, which granted every service of its categories.
    services: frozenset[str] | None = None


@dataclass(frozen=True)
class ConsentState:
    """What one request may do, resolved once before the view and asked by every later step."""

    granted: frozenset[str]
    choice: StoredChoice | None
    gpc: bool
    gpc_revised: StoredChoice | None = None  # the stored choice as GPC revises it, when it does
    regime: str = OPT_IN  # the regime of where the reader is (``regions``)
    # A stored choice whose categories were on only by an opt-out default, met in an opt-in
    # place: the reader is asked, and those categories stay off until they answer.
    ask_again: bool = False
    services: frozenset[str] = frozenset()  # granted services, each of a granted category

    @property
    def has_choice(self) -> bool:
        return self.choice is not None

    @property
    def show_banner(self) -> bool:
        return self.choice is None or self.ask_again

    @property
    def opt_out_regime(self) -> bool:
        return self.regime == OPT_OUT

    @property
    def consent_id(self) -> str | None:
        return self.choice.consent_id if self.choice else None

    def is_granted(self, key: str) -> bool:
        return key in self.granted

    def allows_service(self, key: str) -> bool:
        """A service runs only while the reader grants it (and so its category)."""
        return key in self.services

    def allows_cookie_of(self, category: str, service: Service | None) -> bool:
        """Whether a cookie declared by this category (and this service, for a service's
        cookie) may be kept."""
        if service is not None:
            return self.allows_service(service.key)
        return self.is_granted(category)


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
        services = raw.get("services")
        if services is not None and (
            not isinstance(services, list) or not all(isinstance(s, str) for s in services)
        ):
            return None
        made_at = datetime.fromtimestamp(int(raw["made_at"]), UTC)
        return StoredChoice(
            consent_id=str(uuid.UUID(str(raw["id"]))),
            categories=frozenset(categories),
            made_at=made_at,
            revision=int(raw["revision"]),
            gpc=raw.get("gpc") is True,
            defaulted=read_defaulted(raw.get("defaulted")),
            services=frozenset(services) if services is not None else None,
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def read_defaulted(raw: object) -> frozenset[str]:
    """Categories on only by an opt-out default, as the session holds them (none when absent,
    as in every choice made before regions, or malformed)."""
    if not isinstance(raw, list) or not all(isinstance(key, str) for key in raw):
        return frozenset()
    return frozenset(raw)


def write_stored_choice(session: MutableMapping[str, Any], choice: StoredChoice) -> None:
    stored: dict[str, Any] = {
        "id": choice.consent_id,
        "categories": sorted(choice.categories),
        "made_at": int(choice.made_at.timestamp()),
        "revision": choice.revision,
        "gpc": choice.gpc,
        "services": sorted(choice.services or ()),
    }
    if choice.defaulted:
        stored["defaulted"] = sorted(choice.defaulted)
    session[SESSION_KEY] = stored


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
    regime: Regime = STRICTEST,
) -> ConsentState:
    """The reader's state: their current stored choice, with a GPC signal applied to it, in
    the regime of where they are.

    Without a choice, an opt-out regime runs its categories unless GPC refuses them. A choice
    is the reader's own everywhere, except the categories it holds only by an opt-out
    default: in an opt-in place those are off and the reader is asked (a default is not
    consent). A pure function of the session, the request's signal and the regime; recording
    a revision that GPC makes is the caller's business (``gpc.record_gpc_opt_out_once``).
    """
    stored = read_stored_choice(session)
    if stored is not None and not is_current(stored, registry, now, lifetime):
        stored = None
    if stored is not None:
        stored = with_services_settled(stored, registry)
    revised = gpc_opt_out(stored, registry, regime) if gpc and stored is not None else None
    effective = revised or stored
    granted = registry.required_keys
    services: frozenset[str] = frozenset()
    ask_again = False
    if effective is not None:
        categories = effective.categories
        if not regime.is_opt_out and effective.defaulted & categories:
            categories = categories - effective.defaulted
            ask_again = True
        granted = granted | (categories & registry.optional_keys)
        services = services_within(effective.services or frozenset(), granted, registry)
    elif regime.is_opt_out and not gpc:
        granted = granted | (regime.runs_until_refused & registry.optional_keys)
        services = registry.services_in(granted)
    return ConsentState(
        granted=granted,
        choice=effective,
        gpc=gpc,
        gpc_revised=revised,
        regime=regime.name,
        ask_again=ask_again,
        services=services,
    )


def services_within(
    services: frozenset[str], categories: frozenset[str], registry: Registry
) -> frozenset[str]:
    """The declared services among ``services`` whose categories are granted."""
    return services & registry.services_in(categories & registry.optional_keys)


def with_services_settled(choice: StoredChoice, registry: Registry) -> StoredChoice:
    """The choice naming exactly the declared services it grants: a choice stored before
    services could be chosen grants every service of its categories."""
    chosen = choice.services
    if chosen is None:
        chosen = registry.services_in(choice.categories)
    return replace(choice, services=services_within(chosen, choice.categories, registry))


def new_choice(
    categories: frozenset[str],
    registry: Registry,
    now: datetime,
    consent_id: str | None,
    gpc: bool = False,
    defaulted: frozenset[str] = frozenset(),
    services: frozenset[str] | None = None,
) -> StoredChoice:
    """A new choice keeps the reader's consent id, so their history stays one thread.

    ``services`` None grants every service of the granted categories."""
    kept = (categories & registry.optional_keys) | registry.required_keys
    chosen = registry.services_in(kept) if services is None else services
    return StoredChoice(
        consent_id=consent_id or str(uuid.uuid4()),
        categories=kept,
        made_at=now,
        revision=registry.revision,
        gpc=gpc,
        defaulted=defaulted & kept,
        services=services_within(chosen, kept, registry),
    )


def left_on_by_default(
    granted: frozenset[str], regime: Regime, previous: StoredChoice | None, accepted_all: bool
) -> frozenset[str]:
    """The categories a choice keeps on only because the opt-out regime had them on (the
    preferences form shows them ticked): every one but those the reader actively granted,
    now with Accept All or in an earlier choice."""
    if accepted_all or not regime.is_opt_out:
        return frozenset()
    actively_granted = previous.categories - previous.defaulted if previous else frozenset()
    return (granted & regime.runs_until_refused) - actively_granted


def gpc_opt_out(
    choice: StoredChoice, registry: Registry, regime: Regime = STRICTEST
) -> StoredChoice | None:
    """The stored choice with GPC applied, or None when the signal changes nothing.

    A grant of a ``gpc_opt_out`` category (or, in an opt-out regime, of a category that runs
    until refused) made while the browser sent no GPC signal gives way to the signal. A
    grant made while the signal was present was the reader's own, explicit choice on the
    preferences page, and stands.
    """
    if choice.gpc:
        return None
    withdrawn = choice.categories & (registry.gpc_opt_out_keys | regime.runs_until_refused)
    if not withdrawn:
        return None
    kept = choice.categories - withdrawn
    services = services_within(choice.services or frozenset(), kept, registry)
    return replace(
        choice,
        categories=kept,
        gpc=True,
        defaulted=choice.defaulted - withdrawn,
        services=services,
    )
