"""One way the tests read a page: Python's own HTML parser (through Beautiful Soup), queried
with CSS selectors. A check then holds to the page's structure, not to how its markup happens
to be spelt: attribute order, quotes, spacing and line breaks are the parser's business.
"""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag

# A page's text, or a part of it already found.
Markup = str | Tag

# Every script a browser runs: JSON-LD (<script type="application/ld+json">) is data for
# search engines and the scripts' texts (<script type="application/json">) data for the
# scripts; neither is run.
EXECUTABLE_SCRIPTS = 'script:not([type="application/ld+json"]):not([type="application/json"])'
# The button a reader presses to accept every category, on the banner or the preferences page.
ACCEPT_ALL_BUTTON = 'button[name="action"][value="accept_all"]'


def parse(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def select(markup: Markup, selector: str) -> list[Tag]:
    """Every element ``selector`` matches, in document order."""
    root = parse(markup) if isinstance(markup, str) else markup
    return list(root.select(selector))


def one(markup: Markup, selector: str) -> Tag:
    """The element ``selector`` matches; exactly one must."""
    found = select(markup, selector)
    assert len(found) == 1, f"{len(found)} elements match {selector!r}, not one"
    return found[0]


def attribute(tag: Tag, name: str) -> str | None:
    """An attribute's value as written (``class`` and ``rel`` too, not split into a list)."""
    value = tag.get(name)
    return " ".join(value) if isinstance(value, list) else value


def attributes(markup: Markup, selector: str, name: str) -> list[str]:
    """The value of ``name`` on every element ``selector`` matches that has it."""
    found = (attribute(tag, name) for tag in select(markup, selector))
    return [value for value in found if value is not None]


def texts(markup: Markup, selector: str) -> list[str]:
    """The text of every element ``selector`` matches, with its spacing tidied."""
    return [tag.get_text(" ", strip=True) for tag in select(markup, selector)]


def link_targets(markup: Markup, text: str) -> list[str]:
    """Where each link that reads ``text`` goes."""
    return [
        attribute(link, "href") or ""
        for link in select(markup, "a[href]")
        if link.get_text(" ", strip=True) == text
    ]


def linked_urls(markup: Markup) -> list[str]:
    """Every ``href`` and ``src`` in the page, in document order: what it links and loads."""
    return [
        value
        for tag in select(markup, "[href], [src]")
        for value in (attribute(tag, "href"), attribute(tag, "src"))
        if value
    ]
