"""``flask consent audit`` and ``flask consent audit-data refresh``: what a real browser keeps
of the site in every edition and reader state, against the registry this app loads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from ..proof.records import utc_text
from ..web.audit_marks import AUDIT_REGIME_HEADER
from ..web.engine import engine
from .audit_browser import BrowserError, audit_browser
from .audit_findings import findings_of
from .audit_formats import FORMATS, AuditResult
from .audit_plan import SampledPage, SiteReader, reader_states, sample_pages
from .audit_walk import SETTLE_MS, StateVisit, walk_edition
from .command_options import format_option, output_option, write_lines
from .cookie_database import refresh, shipped_database


@click.command("audit")
@with_appcontext
@click.argument("url")
@format_option(FORMATS, "An aligned table to read, JSON for another program, or one HTML page.")
@output_option("result")
@click.option("--insecure", is_flag=True, help="Accept a self-signed certificate (a test site).")
@click.option(
    "--edition",
    "editions",
    multiple=True,
    metavar="LANGUAGE",
    help="Audit only this edition (repeatable); all of the site's editions by default.",
)
@click.option(
    "--browsers",
    type=click.IntRange(1, 8),
    default=3,
    show_default=True,
    help="Browsers run side by side, one edition each (the pages mostly wait on the site).",
)
@click.option(
    "--settle-ms",
    type=click.IntRange(0, 10_000),
    default=SETTLE_MS,
    show_default=True,
    help="How long each page is given after its load event for its scripts to act.",
)
def audit_command(
    url: str,
    fmt: str,
    output: str,
    insecure: bool,
    editions: tuple[str, ...],
    browsers: int,
    settle_ms: int,
) -> None:
    """Open the site at URL in Debian's Chromium in every edition and reader state (no choice,
    Reject All, each optional category alone, Accept All, GPC), one page of each kind, and
    compare every cookie, storage name and request to another origin with the registry.

    When the registry has an opt-out regime, every state is visited once per regime, naming
    it to the site (X-Consent-Audit-Regime, honoured only from FLASK_CONSENT_AUDIT_ALLOWED);
    what the opt-out regime runs until refused is not too early there.

    Exit status 1 on any undeclared or too-early finding. The audit's choices are marked
    (X-Consent-Audit) so that the site's figures leave them out: audit a staging site when
    you can.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("must be an http:// or https:// address", param_hint="URL")
    unknown = set(editions) - set(current_app.config["LANGUAGES"])
    if unknown:
        raise click.BadParameter(f"not an edition of the site: {', '.join(sorted(unknown))}")
    registry = engine().registry
    log = current_app.logger
    started = time.monotonic()
    site = SiteReader(url, insecure)
    pages = sample_pages(current_app._get_current_object(), registry, site)  # type: ignore[attr-defined]
    pages = [page for page in pages if not editions or page.edition in editions]
    if not any(page.kind == "preferences" for page in pages):
        raise click.ClickException(f"no preferences page answered at {url}: is the site up?")
    regimes = tuple(regime.name for regime in registry.regions.regimes)
    if len(regimes) > 1:
        check_regimes_honoured(site, pages, regimes)
    log.info(
        "cookie audit of %s: %d pages in %d states under %s",
        url,
        len(pages),
        len(reader_states(registry)),
        ", ".join(regimes),
    )
    audited = list(dict.fromkeys(page.edition for page in pages))
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(browsers, len(audited)))) as pool:
            walks = [
                pool.submit(
                    walk_in_own_browser,
                    url,
                    edition,
                    reader_states(registry),
                    pages,
                    regimes=regimes,
                    insecure=insecure,
                    settle_ms=settle_ms,
                    progress=lambda line: click.echo(line, err=True),
                )
                for edition in audited
            ]
            visits = [visit for walk in walks for visit in walk.result()]
    except BrowserError as error:
        raise click.ClickException(str(error)) from None
    result = AuditResult(
        url=url,
        made_at=utc_text(datetime.now(UTC).replace(microsecond=0)),
        revision=registry.revision,
        visits=visits,
        findings=findings_of(visits, registry, shipped_database()),
    )
    write_lines(iter([FORMATS[fmt](result)]), output)
    log.info("%s in %.1f s", result.summary, time.monotonic() - started)
    if output != "-":
        click.echo(result.summary, err=True)
    if result.failed:
        raise SystemExit(1)


def check_regimes_honoured(
    site: SiteReader, pages: list[SampledPage], regimes: tuple[str, ...]
) -> None:
    """Before any browser starts: the site must put the audit under each regime it names, or
    every page would be judged under the wrong one."""
    path = next(page.path for page in pages if page.kind == "preferences")
    for regime in regimes:
        shown = site.regime_shown(path, regime)
        if shown != regime:
            raise click.ClickException(
                f"the site did not put the audit under the {regime} regime ({path} shows "
                f"{shown or 'no regime'}): it honours {AUDIT_REGIME_HEADER} only from the "
                "addresses in FLASK_CONSENT_AUDIT_ALLOWED; add this machine's address as the "
                "site sees it, or audit from one of them. Nothing was audited."
            )


def walk_in_own_browser(url: str, edition: str, *args: Any, **options: Any) -> list[StateVisit]:
    """Playwright's objects belong to the thread that made them: each edition gets its own."""
    with audit_browser() as browser:
        return walk_edition(browser, url, edition, *args, **options)


@click.group("audit-data")
def audit_data_group() -> None:
    """The Open Cookie Database extract the audit suggests categories from."""


@audit_data_group.command("refresh")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="PATH_OR_URL",
    help="open-cookie-database.csv of the Open Cookie Database, a file or an https URL.",
)
def refresh_command(source: str) -> None:
    """Replace the shipped extract with one made from a newer copy of the database."""
    try:
        count = refresh(source)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot refresh the cookie database: {error}") from None
    click.echo(f"{count} cookie entries written.")
