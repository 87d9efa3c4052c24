"""WCAG 2.2 AA and the WAI-ARIA dialog pattern, checked in Chromium: axe-core on every page in
every state, a keyboard-only walk, target sizes, equal choices, narrow and zoomed viewports."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.gunicorn_server import Server
from tests.support.stalling_network import Stall, stalling_network

from .browsing import ARTICLE, DESKTOP, PHONE, Reader, axe_report, no_horizontal_scroll

pytestmark = pytest.mark.browser

PAGES = ["/", ARTICLE, "/consent", "/cookie-policy"]
ZOOMED_200 = {"width": DESKTOP["width"] // 2, "height": DESKTOP["height"] // 2}
SCREENS = {
    "desktop": {"viewport": DESKTOP},
    "320px": {"viewport": PHONE},
    # 200 % zoom of a desktop window: half the CSS pixels, each drawn with two device pixels.
    "200%": {"viewport": ZOOMED_200, "device_scale_factor": 2},
}
WIDTHS = {"desktop": DESKTOP, "320px": PHONE}
MAX_TABS = 80
RECORD_LAYOUT_SHIFTS = """window.__shifts = [];
new PerformanceObserver(list => {
    window.__shifts.push(...list.getEntries().map(e => ({
        value: e.value,
        at: Math.round(e.startTime),
        moved: (e.sources || []).map(s => s.node
            ? `${s.node.nodeName}.${s.node.className}#${s.node.id}`
            : "?"),
    })));
}).observe({type: 'layout-shift', buffered: true});"""
# Where a slow network holds the rest of a page back, inside the banner: each place where a
# banner painted as far as it had come would then grow, at that width.
BANNER_PIECES = {
    "heading": '<h2 id="consent-banner-title">',
    "buttons": '<button type="submit" name="action" value="accept_all"',
    "last-link": '<a class="consent-customize"',
    "last-word": ">Customize</a>",
}
HELD_BACK_CASES = [
    ("desktop", "heading"),
    ("desktop", "buttons"),
    ("320px", "heading"),
    ("320px", "last-link"),
    ("320px", "last-word"),
]
# True in the frame that paints the banner, as far as it has arrived: the page's first paint is
# done (its stylesheet has come) and the banner's element is there.
BANNER_PAINTED_IN_PART = """() => performance.getEntriesByName("first-paint").length > 0
    && !!document.getElementById("consent-banner")"""


def accept_all_from_banner(reader: Reader) -> None:
    reader.page.goto("/")
    reader.page.get_by_role("button", name="Accept All").click()
    expect(reader.page.locator("#consent-banner")).to_have_count(0)


def open_dialog(page: Page) -> Locator:
    page.get_by_role("link", name="Customize").click()
    dialog = page.get_by_role("dialog", name="Cookie settings")
    expect(dialog).to_be_visible()
    return dialog


def focus_in(page: Page, selector: str) -> bool:
    return bool(page.evaluate("s => !!document.activeElement.closest(s)", selector))


def tab_until(page: Page, condition: str) -> None:
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return {condition}; }}"):
            return
    raise AssertionError(f"Tab never reached an element where {condition}")


@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
@pytest.mark.parametrize("state", ["before consent", "after consent"])
def test_axe_finds_no_violation_on_any_page(open_reader, state: str, width: str) -> None:
    reader = open_reader(viewport=WIDTHS[width])
    if state == "after consent":
        accept_all_from_banner(reader)
    reports = {}
    for path in PAGES:
        reader.page.goto(path)
        reader.settle()
        reports[path] = axe_report(reader.page)
    assert {path: report for path, report in reports.items() if report} == {}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
def test_axe_finds_no_violation_in_the_banner_and_the_open_dialog(
    open_reader, width: str, scheme: str
) -> None:
    reader = open_reader(viewport=WIDTHS[width], color_scheme=scheme)
    reader.page.goto(ARTICLE)
    expect(reader.page.locator("#consent-banner")).to_be_visible()
    assert axe_report(reader.page) == ""
    open_dialog(reader.page)
    assert axe_report(reader.page) == ""


def test_keyboard_only_reader_uses_the_dialog(reader: Reader) -> None:
    page = reader.page
    page.goto(ARTICLE)
    tab_until(page, "el.matches('.consent-customize')")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Cookie settings")
    expect(dialog).to_be_visible()
    assert focus_in(page, "dialog"), "focus must move into the dialog"

    stops = dialog.evaluate(
        "d => d.querySelectorAll('a[href],button,input:not([type=hidden])').length"
    )
    first = page.evaluate("document.activeElement.outerHTML")
    for _ in range(stops):
        page.keyboard.press("Tab")
        assert focus_in(page, "dialog"), "Tab must stay inside the modal dialog"
    assert page.evaluate("document.activeElement.outerHTML") == first, "Tab must cycle"
    page.keyboard.press("Shift+Tab")
    expect(dialog.get_by_role("button", name="Reject All")).to_be_focused()
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert outline[0] != "none" and outline[1] >= 2, "the focus ring must be visible"

    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.locator(".consent-customize")).to_be_focused()
    assert reader.optional_cookies() == set()
    assert reader.running_categories() == []

    # Reject All in the dialog starts and stops nothing, so the page stays; the banner goes,
    # and with it the link that opened the dialog: focus returns to the page itself.
    reader.mark_document()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    tab_until(page, "el.value === 'reject_all'")
    page.keyboard.press("Enter")
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.locator("#consent-banner")).to_have_count(0)
    assert reader.same_document()
    assert focus_in(page, "main"), "focus returns to the page when the opener has gone"

    # Granting analytics reloads the page, under a policy that names the analytics script.
    tab_until(page, "el.textContent === 'Cookie settings'")
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    tab_until(page, "el.name === 'analytics'")
    page.keyboard.press("Space")
    analytics = dialog.get_by_role("checkbox", name="Allow analytics cookies and scripts")
    expect(analytics).to_be_checked()
    tab_until(page, "el.value === 'save'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#page-views")).to_be_visible()
    assert reader.running_categories() == ["analytics"]
    assert not reader.same_document()


@pytest.mark.parametrize("screen", ["desktop", "320px"])
@pytest.mark.parametrize("path", ["/", ARTICLE])
def test_banner_does_not_trap_or_hide_keyboard_focus(open_reader, path: str, screen: str) -> None:
    """Every control can be reached with Tab, and none is hidden under the banner (WCAG 2.4.11)."""
    page = open_reader(**SCREENS[screen]).page
    page.goto(path)
    seen = 0
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        place = page.evaluate(
            """() => {
                const el = document.activeElement;
                const banner = document.getElementById('consent-banner');
                const box = el.getBoundingClientRect(), top = banner.getBoundingClientRect().top;
                return {inBanner: banner.contains(el), hidden: box.bottom > top + 1 || box.top < 0,
                        footer: !!el.closest('footer'), text: el.textContent.trim()};
            }"""
        )
        seen += 1
        assert place["inBanner"] or not place["hidden"], f"{place['text']!r} is under the banner"
        if place["footer"] and place["text"] == "Cookie policy":
            break
    else:
        raise AssertionError("Tab never left the article and the banner for the footer")
    assert seen > 4


@pytest.mark.parametrize("screen", ["desktop", "320px", "200%"])
def test_accept_and_reject_are_equal_and_every_target_is_big_enough(open_reader, screen) -> None:
    page = open_reader(**SCREENS[screen]).page
    page.goto(ARTICLE)
    accept, reject = looks_of_choices(page, "#consent-banner")
    assert accept == reject, "Accept All and Reject All must look the same in the banner"
    for box in target_boxes(page, "#consent-banner"):
        assert box["w"] >= 24 and box["h"] >= 24, box
    open_dialog(page)
    accept, reject = looks_of_choices(page, "dialog")
    assert accept == reject, "Accept All and Reject All must look the same in the dialog"
    for box in target_boxes(page, "dialog"):
        assert box["w"] >= 24 and box["h"] >= 24, box


def looks_of_choices(page: Page, scope: str) -> list[dict]:
    return page.evaluate(
        """scope => ['accept_all', 'reject_all'].map(action => {
            const b = document.querySelector(`${scope} button[value=${action}]`);
            const s = getComputedStyle(b), r = b.getBoundingClientRect();
            return {w: Math.round(r.width), h: Math.round(r.height), font: s.fontSize,
                    weight: s.fontWeight, color: s.color, background: s.backgroundColor,
                    border: s.borderColor};
        })""",
        scope,
    )


def target_boxes(page: Page, scope: str) -> list[dict]:
    """Size of every control, except links inside running text (which WCAG 2.5.8 exempts)."""
    return page.evaluate(
        """scope => [...document.querySelector(scope).querySelectorAll(
                'button, input:not([type=hidden]), a[href]:not(p a)')].map(el => {
            const r = el.getBoundingClientRect();
            return {w: r.width, h: r.height, text: el.textContent.trim() || el.name};
        })""",
        scope,
    )


@pytest.mark.parametrize("screen", ["320px", "200%"])
def test_narrow_and_zoomed_readers_see_every_choice(open_reader, screen) -> None:
    reader = open_reader(**SCREENS[screen])
    page = reader.page
    page.goto(ARTICLE)
    assert no_horizontal_scroll(page)
    for name in ("Accept All", "Reject All", "Customize"):
        expect(page.locator("#consent-banner").get_by_text(name)).to_be_in_viewport()
    dialog = open_dialog(page)
    assert no_horizontal_scroll(page)
    expect(dialog.get_by_role("button", name="Save my choices")).to_be_in_viewport()
    expect(dialog.get_by_role("button", name="Close")).to_be_in_viewport()
    dialog.get_by_role("checkbox", name="Allow analytics cookies and scripts").check()
    dialog.get_by_role("button", name="Save my choices").click()
    expect(page.locator("#page-views")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "320px"])
def test_banner_causes_no_layout_shift(open_reader, viewport) -> None:
    reader = open_reader(viewport=viewport)
    reader.page.add_init_script(RECORD_LAYOUT_SHIFTS)
    reader.page.goto(ARTICLE)
    reader.settle()
    reader.page.wait_for_timeout(300)
    expect(reader.page.locator("#consent-banner")).to_be_visible()
    assert reader.page.evaluate("window.__shifts") == []


@pytest.mark.parametrize(
    ("width", "piece"), HELD_BACK_CASES, ids=[f"{w}-{p}" for w, p in HELD_BACK_CASES]
)
def test_a_banner_arriving_in_pieces_appears_whole(
    browser: Browser, site: Server, width: str, piece: str
) -> None:
    """A browser paints the part of a page that has arrived. Painted half-built, the banner,
    held to the bottom of the window, would grow upward as the rest arrived: a layout shift
    that a reader on a slow connection or a busy phone sees. It shows only once whole."""
    stall = Stall(BANNER_PIECES[piece])
    with stalling_network(site.port, stall) as base_url:
        context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
        try:
            page = context.new_page()
            page.add_init_script(RECORD_LAYOUT_SHIFTS)
            page.goto(ARTICLE, wait_until="commit")
            page.wait_for_function(BANNER_PAINTED_IN_PART, polling="raf")
            stall.release()
            page.wait_for_load_state("networkidle")
            expect(page.locator("#consent-banner")).to_be_visible()
            shifts = page.evaluate("window.__shifts")
        finally:
            stall.release()
            context.close()
    assert stall.held_back == 1, "the page was not held back inside the banner"
    assert shifts == []


@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
@pytest.mark.parametrize("edition", ["", "/de", "/fr"])
def test_axe_finds_no_violation_in_the_services_of_every_edition(
    open_reader, edition: str, width: str
) -> None:
    """The preferences page with a service refused, and the same in the open dialog, each
    edition at both widths; every service box has its name and fits the screen."""
    reader = open_reader(viewport=WIDTHS[width])
    page = reader.page
    page.goto(f"{edition}/consent")
    page.locator("input[name=services][value=clipwell]").check()
    with page.expect_navigation():
        page.locator("button[value=save]").click()
    page.goto(f"{edition}/consent")
    reader.settle()
    boxes = page.locator("input[name=services]")
    names = [boxes.nth(i).evaluate("el => el.labels[0].textContent") for i in range(boxes.count())]
    reports = {"page": axe_report(page)}
    page.goto(f"{edition}/")
    page.locator("footer a[href*='/consent?next=']").first.click()
    expect(page.locator("dialog.consent-dialog")).to_be_visible()
    reports["dialog"] = axe_report(page)
    assert len(names) == 3 and all(name.strip() for name in names)
    assert no_horizontal_scroll(page)
    assert {where: report for where, report in reports.items() if report} == {}
