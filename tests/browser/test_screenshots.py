"""Pictures of the banner, the dialog, a reader's own settings and the operator's consent
report from the real site, for the README.

They go to a temporary folder, or to the folder named by GU_SCREENSHOT_DIR
(``make screenshots`` points it at docs/screenshots)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from globalupdates.config import PROJECT_ROOT
from tests.support.gunicorn_server import SECRET_KEY

from .browsing import ARTICLE, DESKTOP

pytestmark = pytest.mark.browser

PHONE_SCREEN = {"width": 390, "height": 844}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    chosen = os.environ.get("GU_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("name, viewport", [("desktop", DESKTOP), ("phone", PHONE_SCREEN)])
def test_screenshots_of_the_banner_and_the_dialog(open_reader, folder, name, viewport) -> None:
    page = open_reader(viewport=viewport).page
    page.goto(ARTICLE)
    expect(page.locator("#consent-banner")).to_be_visible()
    banner = folder / f"banner-{name}.png"
    page.screenshot(path=banner, animations="disabled", caret="hide")

    page.get_by_role("link", name="Customize").click()
    expect(page.get_by_role("dialog", name="Cookie settings")).to_be_visible()
    dialog = folder / f"dialog-{name}.png"
    page.screenshot(path=dialog, animations="disabled", caret="hide")

    for picture in (banner, dialog):
        assert picture.read_bytes().startswith(PNG_SIGNATURE)
        assert picture.stat().st_size > 10_000, f"{picture.name} looks empty"


def test_screenshot_of_the_german_banner(open_reader, folder) -> None:
    page = open_reader(viewport=DESKTOP).page
    page.goto("/de/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#consent-banner")).to_be_visible()
    expect(page.locator('#consent-banner button[value="accept_all"]')).to_have_text(
        "Alle akzeptieren"
    )
    picture = folder / "banner-german.png"
    page.screenshot(path=picture, animations="disabled", caret="hide")
    assert_is_a_picture(picture)


def assert_is_a_picture(picture: Path) -> None:
    assert picture.read_bytes().startswith(PNG_SIGNATURE)
    assert picture.stat().st_size > 10_000, f"{picture.name} looks empty"


def test_screenshot_of_the_settings_page_with_the_readers_consent_id(open_reader, folder) -> None:
    page = open_reader(viewport=DESKTOP).page
    page.goto(ARTICLE)
    page.get_by_role("button", name="Accept All").click()
    expect(page.locator("#consent-banner")).to_have_count(0)
    page.goto("/consent")
    consent_id = page.locator(".consent-id code")
    expect(consent_id).to_have_text(
        re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    )
    picture = folder / "settings-consent-id.png"
    page.screenshot(path=picture, animations="disabled", caret="hide")
    assert_is_a_picture(picture)


def test_screenshot_of_the_consent_report(
    open_reader, browser, site_database, folder, tmp_path
) -> None:
    """The report the operator's command writes from the served site's own records, as a
    browser shows the file."""
    for button in ("Accept All", "Reject All"):
        page = open_reader(viewport=DESKTOP).page
        page.goto(ARTICLE)
        page.get_by_role("button", name=button).click()
        expect(page.locator("#consent-banner")).to_have_count(0)
    report = tmp_path / "consent-report.html"
    environment = {
        **os.environ,
        "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{site_database}",
        "FLASK_INSTANCE_PATH": str(site_database.parent / "instance"),
        "FLASK_SECRET_KEY": SECRET_KEY,
    }
    made = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "consent", "report", "-o", str(report)],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(report.as_uri())
        expect(page.locator("svg").first).to_be_visible()
        expect(page.get_by_text("verified", exact=False).first).to_be_visible()
        picture = folder / "consent-report.png"
        page.screenshot(path=picture, animations="disabled", caret="hide")
    finally:
        context.close()
    assert_is_a_picture(picture)
