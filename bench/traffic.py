"""What the bench sends, found over HTTP as a reader's browser would find it.

The site is a black box here: every page comes from its ``/sitemap.xml`` (each edition's front
page, sections, articles, cookie policy and privacy notice), the tag pages those pages link to,
each edition's preferences page, and a few searches per edition for words of its own articles.
The preferences form gives the consent action of each edition and the names of the optional
categories. Nothing here knows a route of the site's code, so the same bench runs on the site
as it changes.

Readers choose as the bench's mix says (``CHOICE_MIX``): most accept all or reject all, some
save a single category. Every cookie a choice's answer sets is kept and sent back, whatever its
name. Orders are seeded shuffles, so two runs with the same seed send the same requests.
"""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode, urljoin, urlsplit

from tests.support.consent import SAME_ORIGIN
from tests.support.html import attribute, select, texts

SITEMAP = "/sitemap.xml"
NAMESPACES = {
    "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "xhtml": "http://www.w3.org/1999/xhtml",
}
# What every browser sends with a page request.
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
SEARCHES_PER_EDITION = 3
SEARCH_WORD = re.compile(r"^[^\W\d_]{6,}$")
# How readers choose: (action, weight). "save:<n>" saves the n-th optional category alone.
CHOICE_MIX = (("accept_all", 50), ("reject_all", 30), ("save", 20))
PREFERENCES_FORM = 'form:has(button[name="action"][value="save"])'


@dataclass(frozen=True)
class Answer:
    """What a GET gave: the status, the headers (lower-case names) and the body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


# GET ``path`` with these extra headers.
Fetch = Callable[[str, dict[str, str]], Answer]


@dataclass(frozen=True)
class Edition:
    """One edition: its root (``/``, ``/de/``), where its preferences form posts, and the
    optional categories that form offers."""

    root: str
    consent_action: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    editions: tuple[Edition, ...]
    pages: tuple[str, ...]  # every reader-facing page, path and query

    @property
    def shared_pages(self) -> tuple[str, ...]:
        """The pages that are the same for every reader who chose alike: all but each
        edition's preferences, which show a reader who chose their own consent ID and are
        ``private, no-store``, a page of one reader by nature like their history."""
        preferences = {urljoin(edition.root, "consent") for edition in self.editions}
        return tuple(page for page in self.pages if urlsplit(page).path not in preferences)

    def edition_of(self, path: str) -> Edition:
        """The edition whose root is the longest prefix of ``path``."""
        return max(
            (edition for edition in self.editions if path.startswith(edition.root)),
            key=lambda edition: len(edition.root),
        )

    @property
    def beacon_paths(self) -> tuple[str, ...]:
        """The paths a page-view beacon names: each page's path without its query."""
        return tuple(dict.fromkeys(urlsplit(page).path for page in self.pages))


def site_path(url: str, base: str) -> str | None:
    """``url`` as a path and query on the site at ``base``, or None if it leads elsewhere."""
    parts = urlsplit(urljoin(base, url))
    if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(base).netloc:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sitemap_entries(xml: bytes, base: str) -> list[tuple[str, dict[str, str]]]:
    """Each ``<url>`` of the sitemap: its path and its alternates by language."""
    root = ElementTree.fromstring(xml)
    entries = []
    for url in root.findall("sm:url", NAMESPACES):
        path = site_path(url.findtext("sm:loc", "", NAMESPACES).strip(), base)
        if path is None:
            continue
        alternates = {}
        for link in url.findall("xhtml:link", NAMESPACES):
            language, href = link.get("hreflang"), link.get("href")
            if language and href and language != "x-default":
                alternate = site_path(href, base)
                if alternate is not None:
                    alternates[language] = alternate
        entries.append((path, alternates))
    return entries


def edition_roots(entries: Sequence[tuple[str, dict[str, str]]]) -> list[str]:
    """The front page of each edition: ``/`` and its alternates in the other languages."""
    for path, alternates in entries:
        if path == "/":
            return sorted({"/", *alternates.values()})
    return ["/"]


def ok_html(answer: Answer) -> bool:
    return answer.status == 200 and answer.headers.get("content-type", "").startswith("text/html")


def read_edition(fetch: Fetch, root: str) -> Edition:
    """The edition's preferences page: where its form posts and which categories it offers."""
    answer = fetch(urljoin(root, "consent"), {})
    if not ok_html(answer):
        raise RuntimeError(f"{root}consent answered {answer.status}, not a page")
    forms = select(answer.text, PREFERENCES_FORM)
    if len(forms) != 1:
        raise RuntimeError(f"{root}consent has {len(forms)} preferences forms, not one")
    form = forms[0]
    categories = tuple(
        name
        for box in select(form, "input[type=checkbox][data-category-box]")
        if (name := attribute(box, "name"))
    )
    if not categories:
        raise RuntimeError(f"the preferences form at {root}consent offers no category")
    action = attribute(form, "action") or urljoin(root, "consent")
    return Edition(root=root, consent_action=action, categories=categories)


def linked_tag_pages(html: str, base: str) -> set[str]:
    found = set()
    for href in (attribute(link, "href") or "" for link in select(html, "a[href]")):
        path = site_path(href, base)
        if path is not None and "/tags/" in urlsplit(path).path:
            found.add(path)
    return found


def article_words(html: str) -> set[str]:
    """Words of an article's headline (a page whose Open Graph type is ``article``)."""
    if not select(html, 'meta[property="og:type"][content="article"]'):
        return set()
    words = " ".join(texts(html, "h1")).split()
    return {word.lower() for word in words if SEARCH_WORD.match(word)}


def search_pages(words: Iterable[str], root: str, rng: random.Random) -> list[str]:
    chosen = rng.sample(sorted(set(words)), min(SEARCHES_PER_EDITION, len(set(words))))
    return [f"{urljoin(root, 'search')}?q={quote(word)}" for word in chosen]


def discover(fetch: Fetch, base: str, seed: int) -> Site:
    """Every reader-facing page of every edition, each checked to answer 200 with HTML."""
    rng = random.Random(seed)
    sitemap = fetch(SITEMAP, {})
    if sitemap.status != 200:
        raise RuntimeError(f"{SITEMAP} answered {sitemap.status}")
    entries = sitemap_entries(sitemap.body, base)
    editions = [read_edition(fetch, root) for root in edition_roots(entries)]
    pages: dict[str, None] = {}
    tags: set[str] = set()
    words: dict[str, set[str]] = {edition.root: set() for edition in editions}
    probe = Site(tuple(editions), ())
    for path, _ in entries:
        answer = fetch(path, {})
        if not ok_html(answer):
            raise RuntimeError(f"{path}, listed in the sitemap, answered {answer.status}")
        pages[path] = None
        tags |= linked_tag_pages(answer.text, urljoin(base, path))
        words[probe.edition_of(path).root] |= article_words(answer.text)
    for edition in editions:
        pages[urljoin(edition.root, "consent")] = None
        for search in search_pages(words[edition.root], edition.root, rng):
            pages[search] = None
    for tag in sorted(tags):
        pages[tag] = None
    for path in pages:
        answer = fetch(path, {})
        if not ok_html(answer):
            raise RuntimeError(f"{path} answered {answer.status}, not a page")
    return Site(tuple(editions), tuple(pages))


# Readers and their choices.


@dataclass(frozen=True)
class Choice:
    """What one reader posts: to which edition's form, which button, from which page."""

    kind: str  # accept_all, reject_all or save:<category>
    action: str  # the form's action, e.g. /de/consent
    body: str


def choice_for(site: Site, rng: random.Random) -> Choice:
    page = rng.choice(site.pages)
    edition = site.edition_of(page)
    actions = [action for action, _ in CHOICE_MIX]
    action = rng.choices(actions, [weight for _, weight in CHOICE_MIX])[0]
    fields = {"action": action, "next": page}
    kind = action
    if action == "save":
        category = rng.choice(edition.categories)
        fields = {category: "on", **fields}
        kind = f"save:{category}"
    return Choice(kind=kind, action=edition.consent_action, body=urlencode(fields))


def choices(site: Site, count: int, seed: int) -> list[Choice]:
    rng = random.Random(f"choices-{seed}")
    return [choice_for(site, rng) for _ in range(count)]


def kept_cookies(set_cookie_headers: Iterable[str]) -> dict[str, str]:
    """``name=value`` of every cookie these ``Set-Cookie`` headers set (not those they expire)."""
    kept: dict[str, str] = {}
    for header in set_cookie_headers:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError as error:
            raise RuntimeError(f"unreadable Set-Cookie: {header[:60]!r}") from error
        for name, morsel in jar.items():
            if morsel["max-age"] == "0" or not morsel.coded_value:
                kept.pop(name, None)
            else:
                kept[name] = morsel.coded_value
    return kept


@dataclass(frozen=True)
class Reader:
    kind: str
    cookies: dict[str, str]

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


# The requests wrk sends: one a line, in the order given, for bench/requests.lua.


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def line(self) -> str:
        fields = [self.method, self.path, self.body]
        fields += [f"{name}: {value}" for name, value in self.headers.items()]
        if any("\t" in part or "\n" in part for part in fields):
            raise ValueError(f"a tab or line break in a request to {self.path}")
        return "\t".join(fields)


def write_requests(path: Path, requests: Iterable[Request]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as output:
        for request in requests:
            output.write(request.line() + "\n")
            count += 1
    return count


def shuffled_passes(items: Sequence[str], count: int, rng: random.Random) -> Iterator[str]:
    """``count`` items: whole passes over ``items``, each pass in an order of its own."""
    produced = 0
    while produced < count:
        order = list(items)
        rng.shuffle(order)
        yield from order[: count - produced]
        produced += len(order)


def first_visits(site: Site, count: int, seed: int) -> Iterator[Request]:
    rng = random.Random(f"first-visits-{seed}")
    for page in shuffled_passes(site.pages, count, rng):
        yield Request("GET", page, dict(BROWSER))


def returning_visits(site: Site, readers: Sequence[Reader], seed: int) -> Iterator[Request]:
    """Each reader once, in a shuffled order, each on a shared page of its own draw."""
    rng = random.Random(f"returning-{seed}")
    order = list(readers)
    rng.shuffle(order)
    pages = shuffled_passes(site.shared_pages, len(order), rng)
    for reader, page in zip(order, pages, strict=True):
        yield Request("GET", page, {**BROWSER, "Cookie": reader.cookie_header})


def consent_posts(site: Site, count: int, seed: int) -> Iterator[Request]:
    """New readers choosing: no cookie, the mix of choices, each from a page of its edition."""
    for choice in choices(site, count, seed + 1):
        yield Request("POST", choice.action, {**FORM, **SAME_ORIGIN}, choice.body)


def reader_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def beacons(site: Site, readers: Sequence[Reader], count: int, seed: int) -> Iterator[Request]:
    """Page views from readers who granted every category, each with a reader id of its own."""
    granted = [reader for reader in readers if reader.kind == "accept_all"]
    if not granted:
        raise RuntimeError("no reader accepted all, so none may send a page view")
    rng = random.Random(f"beacons-{seed}")
    ids = {index: reader_id(rng) for index in range(len(granted))}
    paths = site.beacon_paths
    for number in range(count):
        index = number % len(granted)
        cookie = f"{granted[index].cookie_header}; gu_reader={ids[index]}"
        body = json.dumps({"path": rng.choice(paths)})
        headers = {**JSON, **SAME_ORIGIN, "Cookie": cookie}
        yield Request("POST", "/features/pageview", headers, body)
