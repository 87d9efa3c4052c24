"""The Open Cookie Database, trimmed: what the cookie audit suggests for a cookie nobody declared.

The data file (``data/open-cookie-database.csv``) is an extract of the Open Cookie Database
(Apache-2.0, see ``data/NOTICE``): for each known cookie or storage key its platform, category,
name, domain, retention and whether the name is a prefix ("wildcard"). Descriptions and links
are left out to keep the package small. ``flask consent audit-data refresh`` makes a new
extract from a newer copy of the database's own CSV.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "open-cookie-database.csv"
NAME = "Cookie / Data Key name"
WILDCARD = "Wildcard match"
KEPT_COLUMNS = ("Platform", "Category", NAME, "Domain", "Retention period", WILDCARD)
# The database's categories, as the site's built-in registry names the nearest category.
REGISTRY_KEYS = {
    "Necessary": "necessary",
    "Security": "necessary",
    "Functional": "functional",
    "Personalization": "functional",
    "Analytics": "analytics",
    "Marketing": "advertisement",
}
LARGEST_SOURCE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Suggestion:
    category: str
    platform: str
    retention: str
    pattern: str

    def registry_key(self, keys: Iterable[str]) -> str | None:
        """The registry's category nearest to the database's, when the registry has it."""
        key = REGISTRY_KEYS.get(self.category)
        return key if key in set(keys) else None


@dataclass(frozen=True)
class CookieDatabase:
    exact: dict[str, Suggestion]
    prefixes: tuple[Suggestion, ...]

    def suggest(self, name: str) -> Suggestion | None:
        """The entry for exactly this name, else the one with the longest prefix of it."""
        found = self.exact.get(name)
        if found is not None:
            return found
        matching = [entry for entry in self.prefixes if name.startswith(entry.pattern)]
        return max(matching, key=lambda entry: len(entry.pattern), default=None)


def parse(rows: Iterable[dict[str, str]]) -> CookieDatabase:
    exact: dict[str, Suggestion] = {}
    prefixes = []
    for row in rows:
        pattern = (row.get(NAME) or "").strip()
        if not pattern:
            continue
        entry = Suggestion(row["Category"], row["Platform"], row["Retention period"], pattern)
        if row.get(WILDCARD, "0").strip() == "1":
            prefixes.append(entry)
        else:
            exact.setdefault(pattern, entry)
    return CookieDatabase(exact, tuple(prefixes))


def shipped_database(path: Path = DATA_FILE) -> CookieDatabase:
    """Read once per audit, by the command; nothing that serves readers keeps it."""
    with path.open(encoding="utf-8", newline="") as source:
        return parse(csv.DictReader(source))


def trimmed(text: str) -> str:
    """The database's CSV cut to ``KEPT_COLUMNS``; ``ValueError`` when it lacks one of them."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in KEPT_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"not the Open Cookie Database's CSV: no column {', '.join(missing)}")
    out = io.StringIO()
    writer = csv.DictWriter(out, KEPT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in reader:
        if (row.get(NAME) or "").strip():
            writer.writerow(row)
            count += 1
    if not count:
        raise ValueError("the CSV names no cookie")
    return out.getvalue()


def read_source(source: str) -> str:
    """The CSV at a path, or at an http(s) URL."""
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 (operator's URL)
            return response.read(LARGEST_SOURCE_BYTES).decode("utf-8")
    return Path(source).read_text(encoding="utf-8")


def refresh(source: str, target: Path = DATA_FILE) -> int:
    """Replace the extract with one made from ``source``, whole or not at all; returns the
    number of entries written."""
    text = trimmed(read_source(source))
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".csv")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)
    return text.count("\n") - 1
