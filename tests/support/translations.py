"""The German and French catalogues as tests read them, and the check that a page has no English
message left in it."""

from __future__ import annotations

import re

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup

from globalupdates.i18n import TRANSLATIONS_DIR

TRANSLATED = ("de", "fr")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def catalogue(lang: str) -> Catalog:
    with (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def entries(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def forms(value: str | tuple[str, ...] | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def placeholders(text: str) -> set[str]:
    return {named or braced for named, braced in PLACEHOLDER.findall(text)}


def english_left(page: BeautifulSoup, messages: list[Message]) -> list[str]:
    """Messages still in English: a sentence anywhere in the text, a short label as a whole
    text or attribute (so that "Set by" inside a registry description does not count)."""
    text = " ".join(page.get_text(" ").split())
    pieces = {" ".join(piece.split()) for piece in page.stripped_strings}
    for tag in page.find_all(True):
        pieces.update(str(tag.get(name, "")) for name in ("aria-label", "title", "content"))
    return [
        message.id
        for message in messages
        if (message.id in text if len(message.id.split()) >= 3 else message.id in pieces)
    ]


def translated_sentences(lang: str) -> list[Message]:
    """Messages of words only (no placeholder, no markup) whose translation differs."""
    return [
        message
        for message in entries(catalogue(lang))
        if isinstance(message.id, str)
        and not placeholders(message.id)
        and "<" not in message.id
        and message.string != message.id
    ]
