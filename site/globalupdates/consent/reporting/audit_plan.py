"""What ``flask consent audit`` visits: the reader states it puts the browser in, and one page
of each kind the site declares, per edition, found from the site's routes and its sitemap.

The pages are found over plain HTTP before the browser starts: the sitemap (and the sitemaps an
index names) and the links of each edition's first pages, each path matched against the site's
own URL rules to learn its endpoint and edition. An endpoint with many pages (an article) is
sampled twice where it can be: one page that embeds a registry provider's content and one
that does not, since an embed is where a third party may come in.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from ..model.record_actions import ACCEPT_ALL, REJECT_ALL, SAVE
from ..model.registry import Registry
from ..web.audit_marks import AUDIT_REGIME_HEADER

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
LARGEST_PAGE_BYTES = 5 * 1024 * 1024
SITEMAP_FILES = 3  # an index's first files: the pages and the first articles are enough
CANDIDATES_READ = 8  # pages of one endpoint read per edition to find one with an embed
FETCH_SECONDS = 20
WITH_EMBED = " (with embed)"


@dataclass(frozen=True)
class ReaderState:
    """A state the audit puts a fresh browser in: the choice it makes (none, or an action and
    the categories ticked) and whether the browser sends Global Privacy Control."""

    key: str
    action: str | None = None
    ticked: tuple[str, ...] = ()
    gpc: bool = False

    def granted(self, registry: Registry) -> frozenset[str]:
        """The categories this state grants once its choice is made (required ones always)."""
        if self.action == ACCEPT_ALL:
            opted_out = registry.gpc_opt_out_keys if self.gpc else frozenset()
            return registry.required_keys | (registry.optional_keys - opted_out)
        return registry.required_keys | frozenset(self.ticked)


def reader_states(registry: Registry) -> list[ReaderState]:
    return [
        ReaderState("no-choice"),
        ReaderState("reject-all", REJECT_ALL),
        *(ReaderState(f"only-{c.key}", SAVE, (c.key,)) for c in registry.optional_categories),
        ReaderState("accept-all", ACCEPT_ALL),
        ReaderState("gpc", ACCEPT_ALL, gpc=True),
    ]


@dataclass(frozen=True)
class SampledPage:
    edition: str
    kind: str  # the page's endpoint in words, and whether it embeds a provider's content
    path: str


def kind_of(endpoint: str) -> str:
    """``articles.front_page`` as "front page": the endpoint's own name, in words."""
    return endpoint.rsplit(".", 1)[-1].replace("_", " ")


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


class ShownRegime(HTMLParser):
    """The regime a page says its reader is under (``data-consent-regime`` on its body)."""

    def __init__(self) -> None:
        super().__init__()
        self.regime: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.regime is None:
            self.regime = dict(attrs).get("data-consent-regime")


def shown_regime(html: str) -> str | None:
    parser = ShownRegime()
    parser.feed(html)
    return parser.regime


class SiteReader:
    """Plain GETs to the audited site, with no cookie: they make no choice and set nothing."""

    def __init__(self, base_url: str, insecure: bool) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = origin_of(base_url)
        self.context = unverified_tls() if insecure else None
        self.read: dict[str, str | None] = {}

    def get(self, path: str) -> str | None:
        """The page's HTML, read once per audit; None when it does not answer 200."""
        if path not in self.read:
            self.read[path] = self.fetch(path)
        return self.read[path]

    def regime_shown(self, path: str, regime: str) -> str | None:
        """The regime the page shows when the audit names ``regime``; None when the page does
        not answer or shows none."""
        html = self.fetch(path, {AUDIT_REGIME_HEADER: regime})
        return shown_regime(html) if html is not None else None

    def fetch(self, path: str, headers: dict[str, str] | None = None) -> str | None:
        url = urljoin(self.base_url + "/", path.lstrip("/"))
        sent = {"Accept": "text/html,application/xml", **(headers or {})}
        request = urllib.request.Request(url, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=FETCH_SECONDS, context=self.context) as r:
                return r.read(LARGEST_PAGE_BYTES).decode("utf-8", "replace")
        except (OSError, ValueError):
            return None

    def same_site_path(self, url: str) -> str | None:
        absolute = urljoin(self.base_url + "/", url)
        if origin_of(absolute) != self.origin:
            return None
        parts = urlsplit(absolute)
        return parts.path + (f"?{parts.query}" if parts.query else "")


def unverified_tls() -> ssl.SSLContext:
    """``--insecure``: a local test server's self-signed certificate is accepted."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def sitemap_urls(site: SiteReader) -> Iterator[str]:
    pending, read = ["/sitemap.xml"], 0
    while pending and read < SITEMAP_FILES:
        text = site.get(pending.pop(0))
        read += 1
        if not text:
            continue
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            continue
        for loc in root.iter(f"{SITEMAP_NS}loc"):
            path = site.same_site_path((loc.text or "").strip())
            if path is None:
                continue
            if root.tag == f"{SITEMAP_NS}sitemapindex":
                pending.append(path)
            else:
                yield path


def links_of(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


class PagePlan:
    """Sorts the site's paths by edition and declared page endpoint."""

    def __init__(self, app: Flask, site: SiteReader) -> None:
        self.site = site
        self.adapter: MapAdapter = app.url_map.bind("audit.invalid")
        self.editions: tuple[str, ...] = tuple(app.config["LANGUAGES"])
        self.default_edition = app.config["BABEL_DEFAULT_LOCALE"]
        self.endpoints = list(app.extensions.get("pages", {}))
        self.candidates: dict[tuple[str, str], list[str]] = {}

    def place(self, path: str) -> None:
        try:
            endpoint, values = self.adapter.match(urlsplit(path).path, method="GET")
        except HTTPException:
            return
        if endpoint not in self.endpoints:
            return
        edition = str(values.get("lang") or self.default_edition)
        found = self.candidates.setdefault((edition, str(endpoint)), [])
        if path not in found:
            found.append(path)

    def add_fixed_pages(self) -> None:
        """Every declared page whose URL takes nothing but the edition."""
        for endpoint in self.endpoints:
            for edition in self.editions:
                values = {} if edition == self.default_edition else {"lang": edition}
                try:
                    self.place(self.adapter.build(endpoint, values))
                except Exception:  # noqa: BLE001 (werkzeug: a rule that needs values)
                    continue

    def add_found_pages(self) -> None:
        for path in sitemap_urls(self.site):
            self.place(path)
        for (_edition, _endpoint), paths in list(self.candidates.items()):
            for path in paths[:2]:
                for href in links_of(self.site.get(path) or ""):
                    found = self.site.same_site_path(href)
                    if found is not None:
                        self.place(found.split("#", 1)[0])


def embeds_a_provider(html: str, registry: Registry) -> bool:
    """Whether a page shows a provider's content or its placeholder: either names one of the
    provider's addresses (its frame, or the link to its own site)."""
    marks = {origin for p in registry.providers for origin in p.origins}
    marks |= {origin_of(p.page_url) for p in registry.providers}
    return any(mark in html for mark in marks)


def sample_pages(app: Flask, registry: Registry, site: SiteReader) -> list[SampledPage]:
    plan = PagePlan(app, site)
    plan.add_fixed_pages()
    plan.add_found_pages()
    sampled: list[SampledPage] = []
    for (edition, endpoint), paths in sorted(plan.candidates.items(), key=plan_order(plan)):
        sampled.extend(pages_of_endpoint(site, registry, edition, endpoint, paths))
    return sampled


def plan_order(plan: PagePlan):
    def order(item: tuple[tuple[str, str], list[str]]) -> tuple[int, int]:
        (edition, endpoint), _ = item
        return plan.editions.index(edition), plan.endpoints.index(endpoint)

    return order


def pages_of_endpoint(
    site: SiteReader, registry: Registry, edition: str, endpoint: str, paths: list[str]
) -> Iterable[SampledPage]:
    kind = kind_of(endpoint)
    paths = [path for path in paths[:CANDIDATES_READ] if site.get(path) is not None]
    if not paths:
        return []
    if len(paths) == 1 or not registry.providers:
        return [SampledPage(edition, kind, paths[0])]
    plain = embedded = None
    for path in paths:
        if embeds_a_provider(site.get(path) or "", registry):
            embedded = embedded or path
        else:
            plain = plain or path
        if plain and embedded:
            break
    chosen = [SampledPage(edition, kind, plain or paths[0])]
    if embedded:
        chosen.append(SampledPage(edition, kind + WITH_EMBED, embedded))
    return chosen
