"""Regimes by place: which consent rules apply where the reader is.

The registry's ``[regions]`` table names the places where the law lets some categories run
until the reader refuses them (``opt-out``); everywhere else, and wherever the place cannot
be told, nothing optional runs before the reader agrees (``opt-in``, the strictest). A place is
an ISO 3166-1 country code (``DE``) or a country with its subdivision (``US-CA``); the
subdivision decides when it is listed, else the country.

Only the regime, never the place, goes further: into the page variant, the cache keys and the
proof. So pages grow by the number of regimes, and no record holds where a reader was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

OPT_IN = "opt-in"
OPT_OUT = "opt-out"
REGIMES = (OPT_IN, OPT_OUT)
# Cloudflare's codes for a place it cannot tell (XX) and for the Tor network (T1); any code
# that is not two letters is as unknown as these.
UNKNOWN_COUNTRIES = frozenset({"XX", "T1"})
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
SUBDIVISION_PATTERN = re.compile(r"^[A-Z0-9]{1,3}$")
PLACE_PATTERN = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


@dataclass(frozen=True)
class Regime:
    """A regime by name, and the categories that run until the reader refuses them (none
    under opt-in)."""

    name: str = OPT_IN
    runs_until_refused: frozenset[str] = frozenset()

    @property
    def is_opt_out(self) -> bool:
        return self.name == OPT_OUT


STRICTEST = Regime()


@dataclass(frozen=True)
class Regions:
    """The places the registry lists, each with its regime's name; any other place is opt-in."""

    places: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    opt_out_categories: frozenset[str] = frozenset()

    @property
    def regimes(self) -> tuple[Regime, ...]:
        """Every regime a reader may be under: opt-in always, opt-out when a place has it."""
        if OPT_OUT in self.places.values():
            return (STRICTEST, self.regime(OPT_OUT))
        return (STRICTEST,)

    def regime(self, name: str) -> Regime:
        if name == OPT_OUT:
            return Regime(OPT_OUT, self.opt_out_categories)
        return STRICTEST

    def regime_name_of(self, country: str | None, subdivision: str | None) -> str:
        """The regime's name for a place as an edge reports it: the subdivision's when it is
        listed, else the country's, else opt-in; anything unknown or malformed is opt-in."""
        country = (country or "").strip().upper()
        if not COUNTRY_PATTERN.match(country) or country in UNKNOWN_COUNTRIES:
            return OPT_IN
        subdivision = (subdivision or "").strip().upper()
        if SUBDIVISION_PATTERN.match(subdivision):
            listed = self.places.get(f"{country}-{subdivision}")
            if listed is not None:
                return listed
        return self.places.get(country, OPT_IN)

    def regime_of(self, country: str | None, subdivision: str | None) -> Regime:
        return self.regime(self.regime_name_of(country, subdivision))

    def fingerprint(self) -> tuple[object, ...]:
        """Everything about the regions a page may show, for the site's version."""
        return (tuple(sorted(self.places.items())), tuple(sorted(self.opt_out_categories)))
