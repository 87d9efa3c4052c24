"""What the audit's observations mean against the registry: undeclared, too early, longer than
declared, and declared but never seen.

A storage key is declared like a cookie, by a name (or pattern) in the registry's cookies: the
registry has one list of what a reader's browser may keep. An origin is declared by a script's
``src`` and ``origins`` or by a service's ``origins`` (an embed provider's among them), under
their category. The necessary categories are granted in every state; before a choice nothing
else is, and any request to another origin is too early whatever declares it. Except in an
opt-out regime: there, until a choice and unless the browser sends GPC (which refuses them, as
the site does), the categories that run until refused are granted too, and so are the origins
declared under them.

Each finding names the regime of the visits that found it (``any`` for one that is not about a
visit: a declaration never seen).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..model.registry import Cookie, Registry
from ..web.csp import script_origins
from .audit_walk import StateVisit
from .cookie_database import CookieDatabase

UNDECLARED = "undeclared"
TOO_EARLY = "too-early"
LONGER = "longer-than-declared"
NEVER_SEEN = "never-seen"
FAILING_KINDS = frozenset({UNDECLARED, TOO_EARLY})
BEFORE_CHOICE = "before the choice"
ANY = "any"
# A cookie's lifetime is read a moment after it was set; this much over its max_age is slack.
LIFETIME_SLACK_SECONDS = 120


@dataclass
class Finding:
    kind: str
    what: str  # cookie, localStorage, sessionStorage, indexedDB or origin
    name: str
    state: str
    detail: str
    editions: list[str] = field(default_factory=list)
    suggestion: str | None = None
    regime: str = ANY

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.kind, self.what, self.name, self.state, self.regime)

    def as_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "kind": self.kind,
            "what": self.what,
            "name": self.name,
            "state": self.state,
            "regime": self.regime,
            "editions": self.editions,
            "detail": self.detail,
        }
        if self.suggestion:
            found["suggestion"] = self.suggestion
        return found


@dataclass(frozen=True)
class Declared:
    category: str
    cookie: Cookie | None = None


class Declarations:
    def __init__(self, registry: Registry) -> None:
        self.cookies: list[tuple[str, Cookie]] = [
            (category.key, cookie)
            for category in registry.categories
            for cookie in category.cookies
        ]
        self.cookies += [(s.category, cookie) for s in registry.services for cookie in s.cookies]
        self.origins: dict[str, str] = {}
        for category in registry.categories:
            for script in category.scripts:
                for origin in script_origins(script):
                    self.origins.setdefault(origin.lower(), category.key)
        for service in registry.services:
            for script in service.scripts:
                for origin in script_origins(script):
                    self.origins.setdefault(origin.lower(), service.category)
            for origin in service.origins:
                self.origins.setdefault(origin.lower(), service.category)

    def name(self, name: str) -> Declared | None:
        for category, cookie in self.cookies:
            if cookie.matches(name):
                return Declared(category, cookie)
        return None

    def origin(self, origin: str) -> Declared | None:
        category = self.origins.get(origin.lower())
        return Declared(category) if category else None


class Judge:
    def __init__(self, registry: Registry, database: CookieDatabase) -> None:
        self.registry = registry
        self.declared = Declarations(registry)
        self.database = database
        self.found: dict[tuple[str, str, str, str, str], Finding] = {}
        self.seen_names: set[str] = set()
        self.seen_origins: set[str] = set()

    def add(self, finding: Finding, visit: StateVisit) -> None:
        finding.regime = visit.regime
        edition = visit.edition
        known = self.found.setdefault(finding.key, finding)
        if finding.detail not in known.detail:
            known.detail = f"{known.detail}; {finding.detail}"
        if edition not in known.editions:
            known.editions.append(edition)

    def granted(self, visit: StateVisit, before_choice: bool) -> frozenset[str]:
        if before_choice or visit.state.action is None:
            return self.registry.required_keys | self.defaults(visit)
        return visit.state.granted(self.registry)

    def defaults(self, visit: StateVisit) -> frozenset[str]:
        """The categories the visit's regime runs before any choice: in an opt-out regime those
        that run until refused, unless the browser sends GPC, which refuses every one of them
        there (``consent.model.choice.resolve``); under opt-in none."""
        regime = self.registry.regions.regime(visit.regime)
        if not regime.is_opt_out or visit.state.gpc:
            return frozenset()
        return regime.runs_until_refused & self.registry.optional_keys

    def judge(self, visit: StateVisit) -> None:
        if not visit.regime_shown:
            return
        for cookie in visit.cookies.values():
            self.judge_name(visit, "cookie", cookie.name, cookie.before_choice, cookie.domain)
            self.judge_lifetime(visit, cookie.name, cookie.lifetime)
        for item in visit.storage:
            self.judge_name(visit, item.area, item.name, item.before_choice, item.origin)
        for request in visit.requests:
            self.judge_request(visit, request.origin, request.before_choice, request.blocked)

    def judge_name(
        self, visit: StateVisit, what: str, name: str, before_choice: bool, where: str
    ) -> None:
        state = visit.state.key
        declared = self.declared.name(name)
        if declared is None:
            detail = f"{what} of {where}; the registry does not declare it"
            self.add(
                Finding(UNDECLARED, what, name, state, detail, [], self.suggest(name)),
                visit,
            )
            return
        self.seen_names.add(declared.cookie.name if declared.cookie else name)
        if declared.category not in self.granted(visit, before_choice):
            when = BEFORE_CHOICE if before_choice else "in a state that does not grant it"
            detail = f"declared under {declared.category}, set {when}"
            self.add(Finding(TOO_EARLY, what, name, state, detail), visit)

    def judge_lifetime(self, visit: StateVisit, name: str, lifetime: int | None) -> None:
        declared = self.declared.name(name)
        if declared is None or declared.cookie is None or lifetime is None:
            return
        max_age = declared.cookie.max_age
        if max_age is None or lifetime > max_age + LIFETIME_SLACK_SECONDS:
            allowed = "the browsing session" if max_age is None else f"{max_age} s"
            detail = f"lives {lifetime} s; declared for {allowed}"
            self.add(Finding(LONGER, "cookie", name, visit.state.key, detail), visit)

    def judge_request(
        self, visit: StateVisit, origin: str, before_choice: bool, blocked: bool
    ) -> None:
        state = visit.state.key
        declared = self.declared.origin(origin)
        attempt = "a blocked attempt to reach it" if blocked else "a request to it"
        if declared is None:
            detail = f"{attempt}; no script or provider of the registry declares it"
            self.add(Finding(UNDECLARED, "origin", origin, state, detail), visit)
        else:
            self.seen_origins.add(origin.lower())
        runs_by_default = declared is not None and declared.category in self.defaults(visit)
        if before_choice and not runs_by_default:
            self.add(
                Finding(TOO_EARLY, "origin", origin, state, f"{attempt} {BEFORE_CHOICE}"),
                visit,
            )
        elif declared is not None and declared.category not in self.granted(visit, before_choice):
            detail = (
                f"{attempt}, declared under {declared.category}, in a state that does not grant it"
            )
            self.add(Finding(TOO_EARLY, "origin", origin, state, detail), visit)

    def suggest(self, name: str) -> str | None:
        entry = self.database.suggest(name)
        if entry is None:
            return None
        key = entry.registry_key(self.registry.keys)
        nearest = f"; nearest category here: {key}" if key else ""
        return f"{entry.category} ({entry.platform}, kept {entry.retention}){nearest}"

    def never_seen(self, editions: Iterable[str]) -> None:
        shown = list(editions)
        for category, cookie in self.declared.cookies:
            if cookie.name not in self.seen_names:
                detail = f"declared under {category}; no state set it"
                self.found[(NEVER_SEEN, "cookie", cookie.name, ANY, ANY)] = Finding(
                    NEVER_SEEN, "cookie", cookie.name, ANY, detail, shown
                )
        for origin, category in self.declared.origins.items():
            if origin not in self.seen_origins:
                detail = f"declared under {category}; no page contacted it"
                self.found[(NEVER_SEEN, "origin", origin, ANY, ANY)] = Finding(
                    NEVER_SEEN, "origin", origin, ANY, detail, shown
                )


KIND_ORDER = (UNDECLARED, TOO_EARLY, LONGER, NEVER_SEEN)


def findings_of(
    visits: list[StateVisit], registry: Registry, database: CookieDatabase
) -> list[Finding]:
    judge = Judge(registry, database)
    for visit in visits:
        judge.judge(visit)
    judge.never_seen(dict.fromkeys(visit.edition for visit in visits))
    return sorted(judge.found.values(), key=lambda f: (KIND_ORDER.index(f.kind), f.what, f.name))


def fails(findings: Iterable[Finding]) -> bool:
    return any(finding.kind in FAILING_KINDS for finding in findings)
