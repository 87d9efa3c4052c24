"""Reading the consent registry file: the TOML parser and validator that make a ``Registry``.

A registry that cannot be used raises ``RegistryError`` naming the key at fault (and the
language, for a missing text), so start-up stops with a message the operator can act on. Each
of the registry's ``languages`` becomes one edition of the ``Registry`` value (see
``registry.py``), each the same in everything but its texts.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .regions import OPT_OUT, PLACE_PATTERN, REGIMES, UNKNOWN_COUNTRIES, Regions
from .registry import (
    DEFAULT_LANGUAGES,
    FIRST_PARTY,
    Authority,
    Category,
    Contact,
    Controller,
    Cookie,
    Notice,
    Processor,
    Provider,
    Registry,
    Script,
    Service,
)

BUILTIN_REGISTRY = Path(__file__).parent.parent / "registry.toml"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
RESERVED_KEYS = {"action", "next", "csrf_token", "services", "exact_services"}
EMAIL_PATTERN = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})?$")


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the offending key."""


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
    controller = parse_controller(data.get("controller"), wording)
    _check_processor_categories(controller, categories)
    regions = parse_regions(data.get("regions", {}), categories)
    return Registry(
        revision=data["revision"],
        notice=parse_notice(notice, regions, wording),
        categories=categories,
        controller=controller,
        providers=(providers := parse_providers(data.get("providers", []), categories, wording)),
        script_services=parse_services(data.get("services", []), categories, providers, wording),
        regions=regions,
    )


def parse_notice(raw: dict[str, Any], regions: Regions, wording: Wording) -> Notice:
    """The ``[notice]`` table. ``text`` says nothing optional runs without the reader's
    permission, which an opt-out place's reader would be told untruly: once ``[regions]``
    lists an opt-out place, ``text_opt_out`` must say what is true there."""
    notice = Notice(
        title=wording.text(raw, "title", "notice"),
        text=wording.text(raw, "text", "notice"),
        text_opt_out=wording.optional_text(raw, "text_opt_out", "notice"),
    )
    if notice.text_opt_out is None and any(regime.is_opt_out for regime in regions.regimes):
        raise RegistryError(
            "notice.text_opt_out is required once regions.places lists an opt-out place: "
            "its readers must not be told that nothing optional runs without their permission"
        )
    return notice


def parse_regions(raw: Any, categories: tuple[Category, ...]) -> Regions:
    """The ``[regions]`` table: each listed place's regime, and the categories an opt-out
    place runs until the reader refuses them. Without the table every place is opt-in."""
    if not isinstance(raw, dict):
        raise RegistryError("'regions' must be a table")
    unknown = sorted(set(raw) - {"places", "opt_out_categories"})
    if unknown:
        raise RegistryError(f"regions.{unknown[0]} is not a key regions knows")
    places = raw.get("places", {})
    if not isinstance(places, dict):
        raise RegistryError("regions.places must be a table of place = regime")
    for place, regime in places.items():
        if not PLACE_PATTERN.match(place):
            raise RegistryError(
                f"regions.places: {place!r} is not a place: write an ISO 3166-1 country "
                'code ("DE") or a country and its subdivision ("US-CA")'
            )
        if place.partition("-")[0] in UNKNOWN_COUNTRIES:
            raise RegistryError(
                f"regions.places: {place!r} names no place; an unknown place is always opt-in"
            )
        if regime not in REGIMES:
            raise RegistryError(f"regions.places.{place} must be one of {list(REGIMES)}")
    opt_out = raw.get("opt_out_categories", [])
    if not isinstance(opt_out, list) or not all(isinstance(key, str) for key in opt_out):
        raise RegistryError("regions.opt_out_categories must list category keys")
    optional = {category.key for category in categories if not category.required}
    for key in opt_out:
        if key not in optional:
            raise RegistryError(f"regions.opt_out_categories: {key!r} is not an optional category")
    if OPT_OUT in places.values() and not opt_out:
        raise RegistryError(
            "regions.opt_out_categories must name the categories an opt-out place runs"
        )
    return Regions(places=MappingProxyType(dict(places)), opt_out_categories=frozenset(opt_out))


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
        category=raw.get("category"),
    )


def _check_processor_categories(controller: Controller, categories: tuple[Category, ...]) -> None:
    """A processor may name the optional category it works for (an analytics vendor), so the
    banner names it among the third parties of that category."""
    optional = {c.key for c in categories if not c.required}
    for i, processor in enumerate(controller.processors):
        if processor.category is not None and processor.category not in optional:
            raise RegistryError(
                f"controller.processors[{i}].category must name an optional category, "
                f"not {processor.category!r}"
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
    return Provider(
        key=key,
        name=name,
        category=category,
        description=wording.text(raw, "description", where),
        origins=origins,
        embed_url=embed_url,
        page_url=_url_pattern(raw, "page_url", where),
        established=wording.optional_text(raw, "established", where),
        cookies=_service_cookies(raw, where, name, wording),
        scripts=_service_scripts(raw, where, name, wording),
        google=_flag(raw, "google", where),
    )


def parse_services(
    raw: Any,
    categories: tuple[Category, ...],
    providers: tuple[Provider, ...],
    wording: Wording = PLAIN,
) -> tuple[Service, ...]:
    """The ``[[services]]`` that are not embed providers: an operator's third-party scripts,
    each with its own cookies and origins, inside an optional category."""
    if not isinstance(raw, list):
        raise RegistryError("'services' must be a list of [[services]] tables")
    optional = {c.key for c in categories if not c.required}
    services = tuple(
        _parse_service(entry, f"services[{i}]", optional, wording) for i, entry in enumerate(raw)
    )
    keys = [s.key for s in (*providers, *services)]
    repeated = {k for k in keys if keys.count(k) > 1}
    if repeated:
        raise RegistryError(f"service key {sorted(repeated)[0]!r} is declared twice")
    return services


def _parse_service(raw: Any, where: str, optional_keys: set[str], wording: Wording) -> Service:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise RegistryError(f"{where}.key must be a lowercase identifier, not {key!r}")
    where = f"services.{key}"
    category = raw.get("category")
    if category not in optional_keys:
        raise RegistryError(f"{where}.category must name an optional category, not {category!r}")
    name = wording.name(raw, "name", where)
    scripts = _service_scripts(raw, where, name, wording)
    if not scripts:
        raise RegistryError(f"{where} needs at least one [[services.scripts]] entry")
    return Service(
        key=key,
        name=name,
        category=category,
        description=wording.text(raw, "description", where),
        origins=_origins(raw["origins"], where) if "origins" in raw else (),
        established=wording.text(raw, "established", where),
        cookies=_service_cookies(raw, where, name, wording),
        scripts=scripts,
        google=_flag(raw, "google", where),
    )


def _service_cookies(
    raw: dict[str, Any], where: str, name: str, wording: Wording
) -> tuple[Cookie, ...]:
    cookies = raw.get("cookies", [])
    if not isinstance(cookies, list):
        raise RegistryError(f"{where}.cookies must be a list of tables")
    return tuple(
        replace(_parse_cookie(c, f"{where}.cookies[{i}]", wording), provider=name)
        for i, c in enumerate(cookies)
    )


def _service_scripts(
    raw: dict[str, Any], where: str, name: str, wording: Wording
) -> tuple[Script, ...]:
    """A service's scripts are a third party's: each loads from an https:// ``src``."""
    scripts = raw.get("scripts", [])
    if not isinstance(scripts, list):
        raise RegistryError(f"{where}.scripts must be a list of tables")
    parsed = []
    for i, entry in enumerate(scripts):
        script = _parse_script(entry, f"{where}.scripts[{i}]", wording)
        if script.src is None:
            raise RegistryError(f"{where}.scripts[{i}] must load from a third party's 'src'")
        established = script.established or wording.optional_text(raw, "established", where)
        parsed.append(replace(script, provider=name, established=established))
    return tuple(parsed)


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
