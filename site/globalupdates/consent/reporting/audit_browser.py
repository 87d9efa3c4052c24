"""The browser of ``flask consent audit``: Debian's Chromium, driven through Playwright, never
a downloaded one.

The pages it opens run third-party scripts, so Chromium runs in a process of its own, as
``nobody`` when the command runs as root, and Playwright (which stays with the command) drives
it over the DevTools protocol on loopback. Every state gets a fresh browser context: its own
cookies and storage, nothing carried over from the state before.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the user namespace sandbox is not available in every container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
UNPRIVILEGED_USER = "nobody"
START_SECONDS = 30
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserError(Exception):
    """The browser could not be started or reached: said in one line to the operator."""


def run_as() -> pwd.struct_passwd | None:
    """The user the browser runs as: ``nobody`` for root, else the caller (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise BrowserError(f"running as root, but there is no user {UNPRIVILEGED_USER!r}") from None


def devtools_url(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + START_SECONDS
    seen = []
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line.strip())
        found = DEVTOOLS_LINE.search(line)
        if found:
            return found.group(1)
    raise BrowserError(f"{CHROMIUM} did not start: {' | '.join(seen[-3:]) or 'no output'}")


def drain(stream: IO[str]) -> None:
    """Keep reading the browser's output, so that a chatty browser never blocks on it."""
    for _line in stream:
        pass


@dataclass(frozen=True)
class RunningBrowser:
    devtools_url: str
    pid: int


@contextmanager
def chromium_process() -> Iterator[RunningBrowser]:
    """Chromium started in its own folder (as ``nobody`` under root); yields its DevTools
    address and process id, and stops it, and removes the folder, afterwards."""
    if not os.access(CHROMIUM, os.X_OK):
        raise BrowserError(f"{CHROMIUM} is missing: install Debian's chromium package")
    user = run_as()
    folder = tempfile.mkdtemp(prefix="gu-audit-")
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    environment = {"HOME": folder, "PATH": "/usr/bin:/bin", "TMPDIR": folder}
    process = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={folder}/profile", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=folder,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
        start_new_session=True,
    )
    reader = None
    try:
        url = devtools_url(process)
        reader = threading.Thread(target=drain, args=(process.stderr,), daemon=True)
        reader.start()
        yield RunningBrowser(url, process.pid)
    finally:
        stop(process)
        if reader is not None:
            reader.join(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def audit_browser() -> Iterator[Any]:
    """A Playwright ``Browser`` connected to that Chromium."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise BrowserError(
            "the audit needs Playwright: pip install 'globalupdates[audit]'"
        ) from None
    with chromium_process() as running, sync_playwright() as playwright:
        try:
            browser = playwright.chromium.connect_over_cdp(running.devtools_url)
        except Error as error:
            raise BrowserError(f"cannot reach the browser: {error.message}") from None
        try:
            yield browser
        finally:
            browser.close()
