"""Pictures of the banner and the dialog from the real site, for the README.

They go to a temporary folder, or to the folder named by GU_SCREENSHOT_DIR
(``make screenshots`` points it at docs/screenshots)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

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
