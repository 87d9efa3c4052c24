"""What the audit's browser sees in one edition and reader state: every cookie (whoever set
it), the storage names of each origin, and every request to another origin, each noted as
made before or after the state's choice.

A state starts in a fresh browser context on the edition's preferences page, where the choice
is made with the page's own form (marked ``X-Consent-Audit: 1``, so the site leaves it out of
its figures); then one page of each kind is opened in turn. Requests a Content-Security-Policy
blocked never reach the network, so the page itself reports them (``securitypolicyviolation``)
and they are kept as blocked attempts.

Each state is visited once per regime the registry has. When it has more than one, every
request to the site names the regime (``X-Consent-Audit-Regime``; never sent to another
origin), and every page opened must show it (``data-consent-regime`` on its body): a page
under another regime ends the visit, which is then not judged, and says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..model.regions import OPT_IN
from ..web.audit_marks import AUDIT_HEADER, AUDIT_REGIME_HEADER
from .audit_plan import ReaderState, SampledPage, origin_of

PAGE_SECONDS = 30
# Gives a page's deferred and load-time scripts the moment they take to set their cookies,
# write their storage and send their first requests once the load event fired.
SETTLE_MS = 300
WATCH_BLOCKED = """
window.__auditBlocked = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__auditBlocked.push(event.blockedURI);
});
"""
SEND_GPC = """
Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true });
"""
READ_REGIME = "() => document.body ? document.body.dataset.consentRegime || null : null"
READ_STORAGE = """
async () => {
  const keys = (store) => { try { return Object.keys(store); } catch (e) { return []; } };
  let databases = [];
  try { databases = (await indexedDB.databases()).map((d) => d.name); } catch (e) {}
  return {
    origin: location.origin,
    localStorage: keys(window.localStorage),
    sessionStorage: keys(window.sessionStorage),
    indexedDB: databases,
    blocked: window.__auditBlocked || [],
  };
}
"""


@dataclass(frozen=True)
class SeenCookie:
    name: str
    domain: str
    path: str
    lifetime: int | None  # seconds left when seen; None for a cookie of the browsing session
    http_only: bool
    secure: bool
    same_site: str
    before_choice: bool


@dataclass(frozen=True)
class SeenStorage:
    origin: str
    area: str  # localStorage, sessionStorage or indexedDB
    name: str
    before_choice: bool


@dataclass(frozen=True)
class SeenRequest:
    origin: str
    url: str  # without its query: what was asked for, not the identifiers sent with it
    page: str
    before_choice: bool
    blocked: bool = False


class RegimeNotShown(Exception):
    """The site put the browser under another regime than the audit named."""


@dataclass
class StateVisit:
    edition: str
    state: ReaderState
    regime: str = OPT_IN
    pages: list[SampledPage] = field(default_factory=list)
    # One per cookie (name, domain, path) and side of the choice: the longest lifetime seen.
    cookies: dict[tuple[str, str, str, bool], SeenCookie] = field(default_factory=dict)
    storage: set[SeenStorage] = field(default_factory=set)
    requests: set[SeenRequest] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # False when a page showed another regime than the visit's: nothing seen is judged.
    regime_shown: bool = True


class StateWalk:
    """One state in one edition, in its own browser context."""

    def __init__(
        self,
        browser: Any,
        base_url: str,
        *,
        insecure: bool,
        settle_ms: int,
        names_regime: bool = False,
    ) -> None:
        self.browser = browser
        self.base_url = base_url.rstrip("/")
        self.origin = origin_of(base_url)
        self.insecure = insecure
        self.settle_ms = settle_ms
        self.names_regime = names_regime
        self.before_choice = True
        self.current_page = ""
        self.visit: StateVisit | None = None

    def run(
        self, edition: str, state: ReaderState, pages: list[SampledPage], regime: str = OPT_IN
    ) -> StateVisit:
        self.visit = visit = StateVisit(edition, state, regime)
        self.before_choice = True
        context = self.new_context(state, regime)
        try:
            page = context.new_page()
            page.set_default_timeout(PAGE_SECONDS * 1000)
            if state.action is not None and not self.chose(page, state, pages):
                return visit
            for sampled in pages:
                self.open(page, sampled)
                visit.pages.append(sampled)
                self.collect(context, page)
        except RegimeNotShown as shown:
            visit.regime_shown = False
            visit.problems.append(str(shown))
        finally:
            context.close()
        return visit

    def new_context(self, state: ReaderState, regime: str) -> Any:
        context = self.browser.new_context(
            ignore_https_errors=self.insecure,
            extra_http_headers={"Sec-GPC": "1"} if state.gpc else None,
        )
        context.add_init_script(WATCH_BLOCKED + (SEND_GPC if state.gpc else ""))
        context.on("request", self.note_request)
        named = regime if self.names_regime else None
        routed = self.is_site_url if named else self.is_choice_url
        context.route(routed, lambda route: self.mark(route, named))
        return context

    def is_site_url(self, url: str) -> bool:
        return origin_of(url) == self.origin

    def is_choice_url(self, url: str) -> bool:
        return self.is_site_url(url) and urlsplit(url).path.endswith("/consent")

    def mark(self, route: Any, regime: str | None) -> None:
        """A request to the site goes out naming the regime the audit visits as (when the
        registry has more than one), and a choice with the audit's mark too; nothing is
        added to a request to any other origin."""
        request = route.request
        added = {}
        if regime is not None:
            added[AUDIT_REGIME_HEADER.lower()] = regime
        if request.method == "POST" and self.is_choice_url(request.url):
            added[AUDIT_HEADER.lower()] = "1"
        if not added:
            route.continue_()
            return
        route.continue_(headers={**request.all_headers(), **added})

    def note_request(self, request: Any) -> None:
        self.note_address(request.url, blocked=False)

    def note_address(self, url: str, *, blocked: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or self.visit is None:
            return
        origin = origin_of(url)
        if origin == self.origin:
            return
        self.visit.requests.add(
            SeenRequest(
                origin,
                f"{origin}{parts.path}",
                self.current_page,
                self.before_choice,
                blocked,
            )
        )

    def chose(self, page: Any, state: ReaderState, pages: list[SampledPage]) -> bool:
        """Make the state's choice; a state whose choice fails is not audited further (what
        it would see is not what its state grants), and says why."""
        try:
            self.choose(page, state, preferences_page(pages))
        except RegimeNotShown:
            raise
        except Exception as error:  # noqa: BLE001 (Playwright's timeouts, a page without the form)
            assert self.visit is not None
            self.visit.problems.append(f"the choice failed: {str(error).splitlines()[0]}")
            return False
        return True

    def choose(self, page: Any, state: ReaderState, preferences: SampledPage) -> None:
        self.open(page, preferences)
        form = page.locator("form.preferences-form")
        for box in form.locator("input[type=checkbox]").all():
            box.set_checked(box_category(box) in state.ticked)
        button = form.locator(f"button[name=action][value={state.action}]")
        self.collect(page.context, page)
        self.before_choice = False
        with page.expect_response(
            lambda r: r.request.method == "POST" and self.is_choice_url(r.url)
        ):
            button.click()
        page.wait_for_load_state("load")
        page.wait_for_timeout(self.settle_ms)

    def open(self, page: Any, sampled: SampledPage) -> None:
        self.current_page = sampled.path
        try:
            page.goto(self.base_url + sampled.path, wait_until="load")
            page.wait_for_timeout(self.settle_ms)
            shown = page.evaluate(READ_REGIME)
        except Exception as error:  # noqa: BLE001 (Playwright's timeouts and network errors)
            assert self.visit is not None
            self.visit.problems.append(f"{sampled.path}: {str(error).splitlines()[0]}")
            return
        self.check_regime(sampled.path, shown)

    def check_regime(self, path: str, shown: str | None) -> None:
        assert self.visit is not None
        if shown is None or shown == self.visit.regime:
            return
        told = (
            f"{AUDIT_REGIME_HEADER} was not honoured: is this machine's address (as the site "
            "sees it) in FLASK_CONSENT_AUDIT_ALLOWED?"
            if self.names_regime
            else "the site put this browser under another regime than the registry's only one"
        )
        raise RegimeNotShown(
            f"{path} shows the {shown} regime, not {self.visit.regime}: {told} "
            "Nothing this visit saw is judged."
        )

    def collect(self, context: Any, page: Any) -> None:
        assert self.visit is not None
        now = time.time()
        for cookie in context.cookies():
            seen = seen_cookie(cookie, now, self.before_choice)
            key = (seen.name, seen.domain, seen.path, seen.before_choice)
            known = self.visit.cookies.get(key)
            if known is None or (seen.lifetime or 0) > (known.lifetime or 0):
                self.visit.cookies[key] = seen
        for frame in page.frames:
            try:
                found = frame.evaluate(READ_STORAGE)
            except Exception:  # noqa: BLE001 (a frame that failed to load, or went away)
                continue
            self.note_storage(found)

    def note_storage(self, found: dict[str, Any]) -> None:
        assert self.visit is not None
        origin = str(found.get("origin") or "")
        for area in ("localStorage", "sessionStorage", "indexedDB"):
            for name in found.get(area) or []:
                self.visit.storage.add(SeenStorage(origin, area, str(name), self.before_choice))
        for url in found.get("blocked") or []:
            self.note_address(str(url), blocked=True)


def preferences_page(pages: list[SampledPage]) -> SampledPage:
    for sampled in pages:
        if sampled.kind == "preferences":
            return sampled
    raise LookupError("the site declares no preferences page to choose on")


def seen_cookie(cookie: dict[str, Any], now: float, before_choice: bool) -> SeenCookie:
    expires = cookie.get("expires", -1)
    return SeenCookie(
        name=cookie["name"],
        domain=cookie.get("domain", ""),
        path=cookie.get("path", "/"),
        lifetime=None if expires is None or expires < 0 else max(0, round(expires - now)),
        http_only=bool(cookie.get("httpOnly")),
        secure=bool(cookie.get("secure")),
        same_site=str(cookie.get("sameSite", "")),
        before_choice=before_choice,
    )


def walk_edition(
    browser: Any,
    base_url: str,
    edition: str,
    states: list[ReaderState],
    pages: list[SampledPage],
    *,
    regimes: tuple[str, ...] = (OPT_IN,),
    insecure: bool = False,
    settle_ms: int = SETTLE_MS,
    progress: Callable[[str], None] = lambda line: None,
) -> list[StateVisit]:
    """Every state in one edition under each regime, one after another, in one browser; the
    regime is named to the site only when there is more than one."""
    walk = StateWalk(
        browser, base_url, insecure=insecure, settle_ms=settle_ms, names_regime=len(regimes) > 1
    )
    edition_pages = [page for page in pages if page.edition == edition]
    visits = []
    for regime in regimes:
        for state in states:
            started = time.monotonic()
            visit = walk.run(edition, state, edition_pages, regime)
            progress(
                f"{edition} {regime} {state.key}: {len(visit.pages)} pages,"
                f" {len(visit.cookies)} cookies, {len(visit.requests)} requests elsewhere"
                f" in {time.monotonic() - started:.1f} s"
            )
            visits.append(visit)
    return visits


def box_category(box: Any) -> str | None:
    """The category a box of the preferences form belongs to: a category's box is named after
    it, a service's box names it in ``data-category`` (a state grants every service of the
    categories it ticks)."""
    name = box.get_attribute("name")
    return box.get_attribute("data-category") if name == "services" else name
