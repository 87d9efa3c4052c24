"""The consent registry: every category, cookie and script the site may use, declared once.

The banner, the preferences form, the cookie policy, the gating of scripts and the
clearing of cookies are all derived from this one value, parsed once at start-up.

Every text a reader sees is declared in each of the registry's ``languages``: the plain
fields in the first, a sub-table named after each other language beside them (see the
header of ``registry.toml``). Parsing makes one edition of the registry per language, each
the same in everything but its texts; ``in_language`` picks one.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext, ngettext

BUILTIN_REGISTRY = Path(__file__).parent.parent / "registry.toml"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
RESERVED_KEYS = {"action", "next", "csrf_token"}
EMAIL_PATTERN = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
FIRST_PARTY = "Global Updates (this site)"
DEFAULT_LANGUAGES = ("en",)
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})?$")


HOST_PREFIX = "__Host-"
SECURE_PREFIX = "__Secure-"


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the offending key."""


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
    title: str
    text: str


@dataclass(frozen=True)
class Provider:
    """A third party whose content an article may embed, loaded only once its category is granted.

    ``embed_url`` and ``page_url`` hold ``{id}``, replaced by the embed's reference; the embed
    URL must lie in one of ``origins``, the origins a browser would contact for it.
    """

    key: str
    name: str
    category: str
    description: str
    origins: tuple[str, ...]
    embed_url: str
    page_url: str
    cookies: tuple[Cookie, ...] = ()
    established: str | None = None  # where the provider is based, for the privacy notice

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

    def category(self, key: str) -> Category:
        for category in self.categories:
            if category.key == key:
                return category
        raise KeyError(key)

    def in_registry_order(self, keys: frozenset[str] | set[str]) -> list[str]:
        return [k for k in self.keys if k in keys]

    def find_cookie(self, cookie_name: str) -> tuple[Category, Cookie] | None:
        for category in self.categories:
            for cookie in category.cookies:
                if cookie.matches(cookie_name):
                    return category, cookie
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
        return tuple((c, s) for c in self.categories for s in c.scripts if s.third_party)

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


def load_registry(path: str | Path | None = None) -> Registry:
    source = Path(path) if path else BUILTIN_REGISTRY
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise RegistryError(f"cannot read consent registry {source}: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise RegistryError(f"consent registry {source} is not valid TOML: {error}") from error
    try:
        return parse_registry(data)
    except RegistryError as error:
        raise RegistryError(f"consent registry {source}: {error}") from error


@dataclass(frozen=True)
class Wording:
    """Where one edition reads its texts: the plain fields for the registry's first language,
    the sub-table named after the language (``[notice.de]``) for any other."""

    language: str
    plain: bool = True

    def text(self, raw: dict[str, Any], name: str, where: str) -> str:
        """A text every language must give; its absence names the key and the language."""
        plain = _text(raw, name, where)
        if self.plain:
            return plain
        table = self.table(raw, where)
        if table.get(name) is None:
            raise RegistryError(f"{where}.{name} has no {self.language!r} text")
        return _text(table, name, f"{where}.{self.language}")

    def optional_text(self, raw: dict[str, Any], name: str, where: str) -> str | None:
        """A text that may be left out; once given, it is needed in every language."""
        if raw.get(name) is None:
            return None
        return self.text(raw, name, where)

    def name(self, raw: dict[str, Any], name: str, where: str) -> str:
        """A name: in the language's own form where one is given, else as written."""
        plain = _text(raw, name, where)
        if self.plain or self.table(raw, where).get(name) is None:
            return plain
        return _text(self.table(raw, where), name, f"{where}.{self.language}")

    def table(self, raw: dict[str, Any], where: str) -> dict[str, Any]:
        table = raw.get(self.language, {})
        if not isinstance(table, dict):
            raise RegistryError(
                f"{where}.{self.language} must be a table of the {self.language!r} texts"
            )
        return table


PLAIN = Wording(DEFAULT_LANGUAGES[0])


def parse_registry(data: dict[str, Any]) -> Registry:
    """The registry in its first language, holding its editions in every other."""
    revision = data.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise RegistryError("'revision' must be a positive integer")
    languages = parse_languages(data.get("languages"))
    editions = {
        language: parse_edition(data, Wording(language, plain=language == languages[0]))
        for language in languages
    }
    shared = MappingProxyType(editions)
    for language in languages:
        editions[language] = replace(
            editions[language], language=language, languages=languages, editions=shared
        )
    return editions[languages[0]]


def parse_languages(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_LANGUAGES
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(code, str) and LANGUAGE_PATTERN.match(code) for code in raw)
    ):
        raise RegistryError(
            "'languages' must list language codes such as \"en\", the language of the plain "
            "fields first"
        )
    repeated = sorted({code for code in raw if raw.count(code) > 1})
    if repeated:
        raise RegistryError(f"language {repeated[0]!r} is listed twice in 'languages'")
    return tuple(raw)


def parse_edition(data: dict[str, Any], wording: Wording) -> Registry:
    """Every table of the registry, with the texts of one language."""
    notice = data.get("notice")
    if not isinstance(notice, dict):
        raise RegistryError("'notice' table with 'title' and 'text' is required")
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise RegistryError("at least one [[categories]] entry is required")
    categories = tuple(
        _parse_category(raw, f"categories[{i}]", wording) for i, raw in enumerate(raw_categories)
    )
    _check_categories(categories)
    return Registry(
        revision=data["revision"],
        notice=Notice(
            title=wording.text(notice, "title", "notice"),
            text=wording.text(notice, "text", "notice"),
        ),
        categories=categories,
        controller=parse_controller(data.get("controller"), wording),
        providers=parse_providers(data.get("providers", []), categories, wording),
    )


def parse_controller(raw: Any, wording: Wording = PLAIN) -> Controller:
    """The ``[controller]`` table: every key the privacy notice needs, checked at start-up."""
    if not isinstance(raw, dict):
        raise RegistryError("a [controller] table naming who runs the site is required")
    where = "controller"
    dpo = raw.get("dpo")
    if dpo is not None and not isinstance(dpo, dict):
        raise RegistryError("controller.dpo must be a table with 'name' and 'email'")
    authority = raw.get("authority")
    if not isinstance(authority, dict):
        raise RegistryError("controller.authority must be a table with 'name' and 'url'")
    processors = raw.get("processors", [])
    if not isinstance(processors, list):
        raise RegistryError("controller.processors must be a list of tables")
    updated = raw.get("updated")
    if not isinstance(updated, date) or hasattr(updated, "hour"):
        raise RegistryError("controller.updated must be a date such as 2026-11-27")
    return Controller(
        name=wording.name(raw, "name", where),
        address=_text(raw, "address", where),
        email=_email(raw, "email", where),
        authority=Authority(
            name=wording.name(authority, "name", "controller.authority"),
            url=_https_url(authority, "url", "controller.authority"),
        ),
        necessary_basis=wording.text(raw, "necessary_basis", where),
        updated=updated,
        dpo=(
            Contact(
                name=wording.name(dpo, "name", "controller.dpo"),
                email=_email(dpo, "email", "controller.dpo"),
            )
            if dpo is not None
            else None
        ),
        processors=tuple(
            _parse_processor(p, f"controller.processors[{i}]", wording)
            for i, p in enumerate(processors)
        ),
    )


def _parse_processor(raw: Any, where: str, wording: Wording) -> Processor:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    return Processor(
        name=wording.name(raw, "name", where),
        service=wording.text(raw, "service", where),
        established=wording.text(raw, "established", where),
        transfer=wording.optional_text(raw, "transfer", where),
    )


def _email(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not EMAIL_PATTERN.match(value):
        raise RegistryError(f"{where}.{name} must be an e-mail address")
    return value


def _https_url(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if (
        not isinstance(value, str)
        or not _origin_of(value)
        or any(ch.isspace() or ch in "\\\"'<>" for ch in value)
    ):
        raise RegistryError(f"{where}.{name} must be an https:// URL")
    return value


def _optional_text(raw: dict[str, Any], name: str, where: str) -> str | None:
    if raw.get(name) is None:
        return None
    return _text(raw, name, where)


def _check_categories(categories: tuple[Category, ...]) -> None:
    keys = [c.key for c in categories]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise RegistryError(f"category key {sorted(duplicates)[0]!r} is declared twice")
    first = categories[0]
    if first.key != "necessary" or not first.required:
        raise RegistryError("the first category must be 'necessary' with required = true")
    for category in categories[1:]:
        if category.required:
            raise RegistryError(f"categories.{category.key}: only 'necessary' may be required")
    if first.scripts:
        raise RegistryError("categories.necessary: declare no scripts; necessary code is the site")
    names = [cookie.name for c in categories for cookie in c.cookies]
    repeated = {n for n in names if names.count(n) > 1}
    if repeated:
        raise RegistryError(f"cookie {sorted(repeated)[0]!r} is declared twice")


def _parse_category(raw: Any, where: str, wording: Wording) -> Category:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key) or key in RESERVED_KEYS:
        raise RegistryError(f"{where}.key must be a lowercase identifier, not {key!r}")
    where = f"categories.{key}"
    cookies = tuple(
        _parse_cookie(c, f"{where}.cookies[{i}]", wording)
        for i, c in enumerate(raw.get("cookies", []))
    )
    scripts = tuple(
        _parse_script(s, f"{where}.scripts[{i}]", wording)
        for i, s in enumerate(raw.get("scripts", []))
    )
    return Category(
        key=key,
        title=wording.text(raw, "title", where),
        description=wording.text(raw, "description", where),
        required=_flag(raw, "required", where),
        gpc_opt_out=_flag(raw, "gpc_opt_out", where),
        cookies=cookies,
        scripts=scripts,
    )


def _parse_cookie(raw: Any, where: str, wording: Wording) -> Cookie:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    max_age = raw.get("max_age")
    if max_age is not None and (
        not isinstance(max_age, int) or isinstance(max_age, bool) or max_age <= 0
    ):
        raise RegistryError(f"{where}.max_age must be a positive number of seconds")
    domain = raw.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise RegistryError(f"{where}.domain must be a string")
    path = raw.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise RegistryError(f"{where}.path must start with '/'")
    return Cookie(
        name=_text(raw, "name", where),
        description=wording.text(raw, "description", where),
        max_age=max_age,
        path=path,
        domain=domain or None,
        provider=raw.get("provider", FIRST_PARTY),
    )


def _parse_script(raw: Any, where: str, wording: Wording) -> Script:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    src, static = raw.get("src"), raw.get("static")
    if (src is None) == (static is None):
        raise RegistryError(f"{where} needs exactly one of 'src' (a URL) or 'static' (a file)")
    if src is not None and (not isinstance(src, str) or not src.startswith("https://")):
        raise RegistryError(f"{where}.src must be an https:// URL")
    origins = raw.get("origins", [])
    if not isinstance(origins, list) or not all(
        isinstance(o, str) and o.startswith("https://") for o in origins
    ):
        raise RegistryError(f"{where}.origins must be a list of https:// origins")
    provider = _optional_text(raw, "provider", where)
    if src is None and provider is not None:
        raise RegistryError(f"{where}.provider is only for a third party's 'src' script")
    return Script(
        src=src,
        static=static,
        origins=tuple(origins),
        defer=_flag(raw, "defer", where, True),
        provider=provider or (_origin_of(src) if src else FIRST_PARTY),
        established=wording.optional_text(raw, "established", where),
    )


def _text(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{where}.{name} must be non-empty text")
    return " ".join(value.split())


def _flag(raw: dict[str, Any], name: str, where: str, default: bool = False) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise RegistryError(f"{where}.{name} must be true or false")
    return value


def parse_providers(
    raw: Any, categories: tuple[Category, ...], wording: Wording = PLAIN
) -> tuple[Provider, ...]:
    if not isinstance(raw, list):
        raise RegistryError("'providers' must be a list of [[providers]] tables")
    optional = {c.key for c in categories if not c.required}
    providers = tuple(
        _parse_provider(entry, f"providers[{i}]", optional, wording) for i, entry in enumerate(raw)
    )
    keys = [p.key for p in providers]
    repeated = {k for k in keys if keys.count(k) > 1}
    if repeated:
        raise RegistryError(f"provider key {sorted(repeated)[0]!r} is declared twice")
    return providers


def _parse_provider(raw: Any, where: str, optional_keys: set[str], wording: Wording) -> Provider:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise RegistryError(f"{where}.key must be a lowercase identifier, not {key!r}")
    where = f"providers.{key}"
    category = raw.get("category")
    if category not in optional_keys:
        raise RegistryError(f"{where}.category must name an optional category, not {category!r}")
    origins = _origins(raw.get("origins"), where)
    embed_url = _url_pattern(raw, "embed_url", where)
    if _origin_of(embed_url) not in origins:
        raise RegistryError(f"{where}.embed_url must load from one of its declared origins")
    name = wording.name(raw, "name", where)
    cookies = raw.get("cookies", [])
    if not isinstance(cookies, list):
        raise RegistryError(f"{where}.cookies must be a list of tables")
    return Provider(
        key=key,
        name=name,
        category=category,
        description=wording.text(raw, "description", where),
        origins=origins,
        embed_url=embed_url,
        page_url=_url_pattern(raw, "page_url", where),
        established=wording.optional_text(raw, "established", where),
        cookies=tuple(
            replace(_parse_cookie(c, f"{where}.cookies[{i}]", wording), provider=name)
            for i, c in enumerate(cookies)
        ),
    )


def _origins(value: Any, where: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(o, str) and _origin_of(o) == o for o in value)
    ):
        raise RegistryError(
            f"{where}.origins must list https:// origins (scheme and host, no path)"
        )
    return tuple(value)


def _url_pattern(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if (
        not isinstance(value, str)
        or value.count("{id}") != 1
        or not _origin_of(value)
        or any(ch.isspace() or ch in "\\\"'<>" for ch in value)
    ):
        raise RegistryError(f"{where}.{name} must be an https:// URL holding '{{id}}' once")
    return value


def _origin_of(url: str) -> str:
    """``https://host[:port]`` of an https URL, or an empty string for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return ""
    return f"https://{parts.netloc}"
