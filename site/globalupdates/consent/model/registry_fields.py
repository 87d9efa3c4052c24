"""The pieces every table of the registry file is read with: ``RegistryError``, a text in
each language (``Wording``), a flag, an origin, and the cookie and script tables that both
categories and services declare. Part of reading the registry file (``registry_file``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .registry import DEFAULT_LANGUAGES, FIRST_PARTY, Cookie, Script

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class Wording:
    """Where one edition reads its texts: the plain fields for the registry's first language,
    the sub-table named after the language (``[notice.de]``) for any other."""

    language: str
    plain: bool = True

    def text(self, raw: dict[str, Any], name: str, where: str) -> str:
        """A text every language must give; its absence names the key and the language."""
        plain = text_of(raw, name, where)
        if self.plain:
            return plain
        table = self.table(raw, where)
        if table.get(name) is None:
            raise RegistryError(f"{where}.{name} has no {self.language!r} text")
        return text_of(table, name, f"{where}.{self.language}")

    def optional_text(self, raw: dict[str, Any], name: str, where: str) -> str | None:
        """A text that may be left out; once given, it is needed in every language."""
        if raw.get(name) is None:
            return None
        return self.text(raw, name, where)

    def name(self, raw: dict[str, Any], name: str, where: str) -> str:
        """A name: in the language's own form where one is given, else as written."""
        plain = text_of(raw, name, where)
        if self.plain or self.table(raw, where).get(name) is None:
            return plain
        return text_of(self.table(raw, where), name, f"{where}.{self.language}")

    def table(self, raw: dict[str, Any], where: str) -> dict[str, Any]:
        table = raw.get(self.language, {})
        if not isinstance(table, dict):
            raise RegistryError(
                f"{where}.{self.language} must be a table of the {self.language!r} texts"
            )
        return table


PLAIN = Wording(DEFAULT_LANGUAGES[0])


def text_of(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{where}.{name} must be non-empty text")
    return " ".join(value.split())


def _optional_text(raw: dict[str, Any], name: str, where: str) -> str | None:
    if raw.get(name) is None:
        return None
    return text_of(raw, name, where)


def flag_of(raw: dict[str, Any], name: str, where: str, default: bool = False) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise RegistryError(f"{where}.{name} must be true or false")
    return value


def parse_cookie(raw: Any, where: str, wording: Wording) -> Cookie:
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
        name=text_of(raw, "name", where),
        description=wording.text(raw, "description", where),
        max_age=max_age,
        path=path,
        domain=domain or None,
        provider=raw.get("provider", FIRST_PARTY),
    )


def parse_script(raw: Any, where: str, wording: Wording) -> Script:
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
        defer=flag_of(raw, "defer", where, True),
        provider=provider or (origin_of(src) if src else FIRST_PARTY),
        established=wording.optional_text(raw, "established", where),
    )


def origin_of(url: str) -> str:
    """``https://host[:port]`` of an https URL, or an empty string for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return ""
    return f"https://{parts.netloc}"
