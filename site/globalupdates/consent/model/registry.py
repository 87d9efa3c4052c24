"""The consent registry as a value: every category, cookie and script the site may use,
declared once.

The banner, the preferences form, the cookie policy, the gating of scripts and the
clearing of cookies are all derived from this one value, parsed once at start-up by
``registry_file`` from ``registry.toml``.

Every text a reader sees is declared in each of the registry's ``languages``: the plain
fields in the first, a sub-table named after each other language beside them (see the
header of ``registry.toml``). Parsing makes one edition of the registry per language, each
the same in everything but its texts; ``in_language`` picks one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from functools import cached_property

from flask_babel import gettext, ngettext

from .regions import OPT_OUT, Regions

FIRST_PARTY = "Global Updates (this site)"
DEFAULT_LANGUAGES = ("en",)


HOST_PREFIX = "__Host-"
SECURE_PREFIX = "__Secure-"


@dataclass(frozen=True)
class Cookie:
    name: str
    description: str
    max_age: int | None = None
    path: str = "/"
    domain: str | None = None
    provider: str = FIRST_PARTY

    def matches(self, cookie_name: str) -> bool:
        """A cookie's ``__Host-`` or ``__Secure-`` prefix only tells the browser how to keep
        it: the declared name is the name without it."""
        return fnmatchcase(
            cookie_name.removeprefix(HOST_PREFIX).removeprefix(SECURE_PREFIX), self.name
        )

    @property
    def duration(self) -> str:
        """How long it is kept, in the page's language (English outside a request)."""
        return describe_duration(self.max_age)

    @property
    def set_by_this_site(self) -> bool:
        """True for the site's own cookies, whose setter a page names in its own language."""
        return self.provider == FIRST_PARTY


@dataclass(frozen=True)
class Script:
    src: str | None = None
    static: str | None = None
    origins: tuple[str, ...] = ()
    defer: bool = True
    provider: str = FIRST_PARTY
    established: str | None = None  # where a third party sending it is based, for the notice

    @property
    def third_party(self) -> bool:
        return self.src is not None


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    description: str
    required: bool = False
    gpc_opt_out: bool = False
    cookies: tuple[Cookie, ...] = ()
    scripts: tuple[Script, ...] = ()


@dataclass(frozen=True)
class Notice:
    """The banner's first layer. ``text`` tells a reader that nothing optional runs without
    their permission; where some categories run until refused, that is untrue, so an opt-out
    place is shown ``text_opt_out`` instead (the parser requires it once a place is opt-out)."""

    title: str
    text: str
    text_opt_out: str | None = None

    def text_for(self, regime: str) -> str:
        """The first layer's text under the reader's regime (``regions``)."""
        if regime == OPT_OUT and self.text_opt_out is not None:
            return self.text_opt_out
        return self.text


@dataclass(frozen=True, kw_only=True)
class Service:
    """A third party inside a category, which a reader may refuse while granting the category.

    ``name`` says who runs it, ``description`` what it does, ``established`` where the data it
    receives goes. Its cookies, scripts and origins are used only while the reader grants both
    its category and the service itself.
    """

    key: str
    name: str
    category: str
    description: str
    origins: tuple[str, ...] = ()
    cookies: tuple[Cookie, ...] = ()
    scripts: tuple[Script, ...] = ()
    established: str | None = None  # where the service is based, for the privacy notice
    google: bool = False  # a Google service, which Google Consent Mode's signals speak for


@dataclass(frozen=True, kw_only=True)
class Provider(Service):
    """A service whose content an article may embed, loaded only once the reader allows it.

    ``embed_url`` and ``page_url`` hold ``{id}``, replaced by the embed's reference; the embed
    URL must lie in one of ``origins``, the origins a browser would contact for it.
    """

    embed_url: str
    page_url: str

    def embed_src(self, ref: str) -> str:
        return self.embed_url.replace("{id}", ref)

    def page_href(self, ref: str) -> str:
        return self.page_url.replace("{id}", ref)


@dataclass(frozen=True)
class Contact:
    name: str
    email: str


@dataclass(frozen=True)
class Authority:
    name: str
    url: str


@dataclass(frozen=True)
class Processor:
    """A service the operator hires to handle data on its behalf (hosting, e-mail)."""

    name: str
    service: str
    established: str
    transfer: str | None = None  # how a transfer outside the EEA is safeguarded, if any
    category: str | None = None  # the optional category it works for; None: whatever is chosen


@dataclass(frozen=True)
class Controller:
    """Who answers for the data this site handles: what the privacy notice is made from."""

    name: str
    address: str
    email: str
    authority: Authority
    necessary_basis: str
    updated: date
    dpo: Contact | None = None
    processors: tuple[Processor, ...] = ()


@dataclass(frozen=True)
class ThirdParties:
    """Who outside the site receives a reader's data once ``category`` is granted, by name."""

    category: Category
    names: tuple[str, ...]


@dataclass(frozen=True)
class Registry:
    """Immutable once loaded, so each derived value is worked out once and then reused.

    One value per language: ``language`` is the language of its texts, and ``editions``
    holds the registry in each of ``languages`` (the same mapping in every edition), so
    that any edition can give any other.
    """

    revision: int
    notice: Notice
    categories: tuple[Category, ...]
    controller: Controller
    providers: tuple[Provider, ...] = ()
    regions: Regions = field(default_factory=Regions)
    script_services: tuple[Service, ...] = ()  # the services that are not embed providers
    language: str = DEFAULT_LANGUAGES[0]
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    editions: Mapping[str, Registry] = field(default_factory=dict, compare=False, repr=False)

    def in_language(self, language: str) -> Registry:
        """The registry with its texts in ``language``, or in its first language when it has
        none in that one (a registry made without editions is its own only edition)."""
        return self.editions.get(language) or self.editions.get(self.languages[0]) or self

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.categories)

    @cached_property
    def optional_categories(self) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if not c.required)

    @cached_property
    def optional_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.optional_categories)

    @cached_property
    def required_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.categories if c.required)

    @cached_property
    def gpc_opt_out_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.categories if c.gpc_opt_out)

    @cached_property
    def services(self) -> tuple[Service, ...]:
        """Every service, embed providers and the others, in the order of their categories."""
        declared = (*self.providers, *self.script_services)
        return tuple(s for key in self.keys for s in declared if s.category == key)

    @cached_property
    def service_keys(self) -> frozenset[str]:
        return frozenset(s.key for s in self.services)

    def services_of(self, category_key: str) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.category == category_key)

    def google_services_of(self, category_key: str) -> frozenset[str]:
        return frozenset(s.key for s in self.services_of(category_key) if s.google)

    def service(self, key: str) -> Service:
        for service in self.services:
            if service.key == key:
                return service
        raise KeyError(key)

    def services_in(self, categories: frozenset[str] | set[str]) -> frozenset[str]:
        """The keys of every service of these categories: what granting them all grants."""
        return frozenset(s.key for s in self.services if s.category in categories)

    def services_in_registry_order(self, keys: frozenset[str] | set[str]) -> list[str]:
        return [s.key for s in self.services if s.key in keys]

    def category(self, key: str) -> Category:
        for category in self.categories:
            if category.key == key:
                return category
        raise KeyError(key)

    def in_registry_order(self, keys: frozenset[str] | set[str]) -> list[str]:
        return [k for k in self.keys if k in keys]

    def find_cookie(self, cookie_name: str) -> tuple[Category, Cookie] | None:
        found = self.find_cookie_owner(cookie_name)
        return (found[0], found[2]) if found is not None else None

    def find_cookie_owner(self, cookie_name: str) -> tuple[Category, Service | None, Cookie] | None:
        """The category and, for a service's cookie, the service that declare this cookie."""
        for category in self.categories:
            for cookie in category.cookies:
                if cookie.matches(cookie_name):
                    return category, None, cookie
        for service in self.services:
            for cookie in service.cookies:
                if cookie.matches(cookie_name):
                    return self.category(service.category), service, cookie
        return None

    def first_party_cookie_names(self) -> frozenset[str]:
        """The names of the cookies this site sets itself (a pattern is a third party's)."""
        return frozenset(
            cookie.name
            for category in self.categories
            for cookie in category.cookies
            if cookie.set_by_this_site and not any(mark in cookie.name for mark in "*?[")
        )

    def cookie(self, cookie_name: str) -> Cookie:
        found = self.find_cookie(cookie_name)
        if found is None:
            raise KeyError(cookie_name)
        return found[1]

    def category_of_static_script(self, filename: str) -> str:
        """The category that gates a first-party script, so its endpoints share the gate."""
        for category in self.categories:
            if any(script.static == filename for script in category.scripts):
                return category.key
        raise KeyError(filename)

    def provider(self, key: str) -> Provider:
        for provider in self.providers:
            if provider.key == key:
                return provider
        raise KeyError(key)

    @cached_property
    def third_party_scripts(self) -> tuple[tuple[Category, Script], ...]:
        in_categories = [(c, s) for c in self.categories for s in c.scripts if s.third_party]
        of_services = [(self.category(v.category), s) for v in self.services for s in v.scripts]
        return tuple(in_categories + of_services)

    @cached_property
    def third_parties(self) -> tuple[ThirdParties, ...]:
        """The third parties each optional category sends data to, in registry order, each
        name once: its embed providers and other services, the senders of its third-party
        scripts and cookies, and the processors hired for it. The banner names them; a
        category that sends nothing to anyone is left out."""
        found = []
        for category in self.optional_categories:
            names = dict.fromkeys(
                [p.name for p in self.providers if p.category == category.key]
                + [s.name for s in self.script_services if s.category == category.key]
                + [s.provider for s in category.scripts if s.third_party]
                + [c.provider for c in category.cookies if not c.set_by_this_site]
                + [p.name for p in self.controller.processors if p.category == category.key]
            )
            if names:
                found.append(ThirdParties(category, tuple(names)))
        return tuple(found)

    def notice_hash_for(self, language: str) -> str:
        """The SHA-256 of the notice exactly as a reader of ``language`` is shown it: every
        text before choosing, the privacy notice's controller data included, in that
        language. A record stores it with its language, to prove which wording the choice
        was made under."""
        if language not in self.languages:
            raise KeyError(language)
        return self.in_language(language).shown_hash

    @cached_property
    def shown_hash(self) -> str:
        """The digest of this edition's texts (``notice_hash_for`` its language)."""
        shown = {
            "notice": asdict(self.notice),
            "categories": [asdict(c) for c in self.categories],
            "providers": [asdict(p) for p in self.providers],
            "services": [asdict(s) for s in self.script_services],
            "controller": asdict(self.controller),
        }
        encoded = json.dumps(shown, sort_keys=True, separators=(",", ":"), default=str).encode()
        return hashlib.sha256(encoded).hexdigest()

    @cached_property
    def notice_hash(self) -> str:
        """A fingerprint of the notice in every language: any change to any text in any
        language changes it (the page cache's site version is made from it). A record
        stores ``notice_hash_for`` its own language instead."""
        hashes = {language: self.notice_hash_for(language) for language in self.languages}
        encoded = json.dumps(hashes, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()


def describe_duration(max_age: int | None) -> str:
    """A cookie's lifetime in the page's language, written to fit a table cell and the middle
    of a sentence alike ("1 year", "13 Monate", "the browsing session")."""
    if max_age is None:
        return gettext("the browsing session")
    units = ((365 * 86400, "year"), (30 * 86400, "month"), (86400, "day"), (3600, "hour"))
    for seconds, unit in units:
        if max_age >= seconds and max_age % seconds == 0:
            return counted(unit, max_age // seconds)
    if max_age >= 86400:
        return counted("day", max_age // 86400)
    return counted("second", max_age)


def counted(unit: str, count: int) -> str:
    """Each unit its own message, so that every language can give each its plural forms."""
    if unit == "year":
        return ngettext("%(num)d year", "%(num)d years", count)
    if unit == "month":
        return ngettext("%(num)d month", "%(num)d months", count)
    if unit == "day":
        return ngettext("%(num)d day", "%(num)d days", count)
    if unit == "hour":
        return ngettext("%(num)d hour", "%(num)d hours", count)
    return ngettext("%(num)d second", "%(num)d seconds", count)
