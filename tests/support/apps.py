"""The settings every test app is built with, and the folders of content and static files
it reads, compiled the way ``make`` compiles them."""

from __future__ import annotations

import os
from pathlib import Path

from flask_static_digest import digester

from globalupdates.assets import is_digested
from globalupdates.config import PROJECT_ROOT

CONTENT_DIR = PROJECT_ROOT / "content"
STATIC_DIR = PROJECT_ROOT / "static"
TEST_SECRET_KEY = "test-secret-key-not-for-production"


def app_config(database_uri: str, instance: Path, **extra: object) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "CONTENT_DIR": str(CONTENT_DIR),
        "TRUSTED_HOSTS": ["localhost", "news.example"],
        **extra,
    }


def compile_static(folder: Path) -> None:
    """What ``flask digest compile`` does to one folder with the extension's defaults: a copy
    of each file named after its MD5, a gzip copy of each, and ``cache_manifest.json``."""
    digester.compile(f"{folder}{os.sep}", f"{folder}{os.sep}", [], True, False)


def static_manifest_is_stale(folder: Path) -> bool:
    """Missing, or older than one of the files it names (the test ``make`` applies)."""
    manifest = folder / "cache_manifest.json"
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(
        path.stat().st_mtime > built
        for path in folder.rglob("*")
        if path.is_file()
        and path != manifest
        and path.suffix != ".gz"
        and not is_digested(path.name)
    )
