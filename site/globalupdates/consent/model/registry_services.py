"""The registry's services: the ``[[providers]]`` whose content pages embed, and the
``[[services]]`` whose scripts pages load, each a third party inside an optional category,
with its own cookies and origins. Part of reading the registry file (``registry_file``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from .registry import Category, Cookie, Provider, Script, Service
from .registry_fields import (
    KEY_PATTERN,
    PLAIN,
    RegistryError,
    Wording,
    flag_of,
    origin_of,
    parse_cookie,
    parse_script,
)

Entry = TypeVar("Entry", Provider, Service)


def parse_providers(
    raw: Any, categories: tuple[Category, ...], wording: Wording = PLAIN
) -> tuple[Provider, ...]:
    providers = _entries(raw, "providers", categories, wording, _parse_provider)
    _refuse_repeated([p.key for p in providers], "provider")
    return providers


def _parse_provider(raw: Any, where: str, optional_keys: set[str], wording: Wording) -> Provider:
    key, category, where = _keyed_entry(raw, where, "providers", optional_keys)
    origins = _origins(raw.get("origins"), where)
    embed_url = _url_pattern(raw, "embed_url", where)
    if origin_of(embed_url) not in origins:
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
        google=flag_of(raw, "google", where),
    )


def parse_services(
    raw: Any,
    categories: tuple[Category, ...],
    providers: tuple[Provider, ...],
    wording: Wording = PLAIN,
) -> tuple[Service, ...]:
    """The ``[[services]]`` that are not embed providers: an operator's third-party scripts,
    each with its own cookies and origins, inside an optional category."""
    services = _entries(raw, "services", categories, wording, _parse_service)
    _refuse_repeated([s.key for s in (*providers, *services)], "service")
    return services


def _parse_service(raw: Any, where: str, optional_keys: set[str], wording: Wording) -> Service:
    key, category, where = _keyed_entry(raw, where, "services", optional_keys)
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
        google=flag_of(raw, "google", where),
    )


def _entries(
    raw: Any,
    table: str,
    categories: tuple[Category, ...],
    wording: Wording,
    parse: Callable[[Any, str, set[str], Wording], Entry],
) -> tuple[Entry, ...]:
    """Each entry of a ``[[providers]]`` or ``[[services]]`` list, parsed by ``parse``."""
    if not isinstance(raw, list):
        raise RegistryError(f"'{table}' must be a list of [[{table}]] tables")
    optional = {c.key for c in categories if not c.required}
    return tuple(parse(entry, f"{table}[{i}]", optional, wording) for i, entry in enumerate(raw))


def _refuse_repeated(keys: list[str], what: str) -> None:
    repeated = {k for k in keys if keys.count(k) > 1}
    if repeated:
        raise RegistryError(f"{what} key {sorted(repeated)[0]!r} is declared twice")


def _keyed_entry(raw: Any, where: str, table: str, optional_keys: set[str]) -> tuple[str, str, str]:
    """What a provider and a service are checked for first: a table with a key, in an optional
    category. Gives the key, the category, and the entry's place by key (``providers.vidmoor``)
    for the errors that follow."""
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise RegistryError(f"{where}.key must be a lowercase identifier, not {key!r}")
    where = f"{table}.{key}"
    category = raw.get("category")
    if category not in optional_keys:
        raise RegistryError(f"{where}.category must name an optional category, not {category!r}")
    return key, category, where


def _service_cookies(
    raw: dict[str, Any], where: str, name: str, wording: Wording
) -> tuple[Cookie, ...]:
    cookies = raw.get("cookies", [])
    if not isinstance(cookies, list):
        raise RegistryError(f"{where}.cookies must be a list of tables")
    return tuple(
        replace(parse_cookie(c, f"{where}.cookies[{i}]", wording), provider=name)
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
        script = parse_script(entry, f"{where}.scripts[{i}]", wording)
        if script.src is None:
            raise RegistryError(f"{where}.scripts[{i}] must load from a third party's 'src'")
        established = script.established or wording.optional_text(raw, "established", where)
        parsed.append(replace(script, provider=name, established=established))
    return tuple(parsed)


def _origins(value: Any, where: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(o, str) and origin_of(o) == o for o in value)
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
        or not origin_of(value)
        or any(ch.isspace() or ch in "\\\"'<>" for ch in value)
    ):
        raise RegistryError(f"{where}.{name} must be an https:// URL holding '{{id}}' once")
    return value
