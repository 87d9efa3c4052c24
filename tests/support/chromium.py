"""Debian's Chromium as the browser tests and the bench start it: headless, and quiet (no
update checks, sync or other traffic of its own that would show among the page's requests)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
