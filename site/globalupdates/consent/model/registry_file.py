"""Reading the consent registry file: the TOML parser and validator that make a ``Registry``.

A registry that cannot be used raises ``RegistryError`` naming the key at fault (and the
language, for a missing text), so start-up stops with a message the operator can act on. Each
of the registry's ``languages`` becomes one edition of the ``Registry`` value (see
``registry.py``), each the same in everything but its texts.

The services (providers and script services) are read in ``registry_services``, the pieces
every table is read with in ``registry_fields``; this module's names are the ones to import.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .regions import OPT_OUT, PLACE_PATTERN, REGIMES, UNKNOWN_COUNTRIES, Regions
from .registry import (
    DEFAULT_LANGUAGES,
    Authority,
    Category,
    Contact,
    Controller,
    Notice,
    Processor,
    Registry,
)
from .registry_fields import (
    KEY_PATTERN,
    PLAIN,
    RegistryError,
    Wording,
    flag_of,
    origin_of,
    parse_cookie,
    parse_script,
    text_of,
)
from .registry_services import parse_providers, parse_services

BUILTIN_REGISTRY = Path(__file__).parent.parent / "registry.toml"
RESERVED_KEYS = {"action", "next", "csrf_token", "services", "exact_services"}
EMAIL_PATTERN = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})?$")


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
        address=text_of(raw, "address", where),
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
        or not origin_of(value)
        or any(ch.isspace() or ch in "\\\"'<>" for ch in value)
    ):
        raise RegistryError(f"{where}.{name} must be an https:// URL")
    return value


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
        parse_cookie(c, f"{where}.cookies[{i}]", wording)
        for i, c in enumerate(raw.get("cookies", []))
    )
    scripts = tuple(
        parse_script(s, f"{where}.scripts[{i}]", wording)
        for i, s in enumerate(raw.get("scripts", []))
    )
    return Category(
        key=key,
        title=wording.text(raw, "title", where),
        description=wording.text(raw, "description", where),
        required=flag_of(raw, "required", where),
        gpc_opt_out=flag_of(raw, "gpc_opt_out", where),
        cookies=cookies,
        scripts=scripts,
    )
