"""Third-party embeds in articles: a Markdown directive at import, a consent decision at render.

An author writes, on a line of its own::

    {{embed vidmoor harbour-dawn-01 | The first generating cycle, filmed from the wall}}

At import the line becomes a marker element in the stored HTML (added after sanitising, with
every value checked and escaped here). At render the marker becomes the real frame when the
consent engine allows the provider, or else a placeholder that requests nothing from it.
The placeholder's "Show this once" button posts the embed's token back to the article, and
only that answer loads the one embed.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache, cached
from markupsafe import Markup, escape

from ..consent import Provider, allow_provider_once, declared_provider, provider_granted

DIRECTIVE = re.compile(
    r"^\{\{embed[ \t]+(?P<provider>\S+)[ \t]+(?P<ref>\S+)[ \t]*"
    r"(?:\|(?P<caption>[^\n]*?))?\}\}[ \t]*$"
)
PROVIDER_KEY = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
REF = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FENCE = re.compile(r"^(```|~~~)")
MARKER = re.compile(
    r'<gu-embed data-provider="(?P<provider>[a-z][a-z0-9_]{0,30})" '
    r'data-ref="(?P<ref>[A-Za-z0-9_-]{1,64})">(?P<caption>[^<]*)</gu-embed>'
)
MAX_CAPTION = 200
SPLIT_BODIES_CHARACTERS = 4 * 1024 * 1024  # bodies and their pieces, per worker


class EmbedDirectiveError(ValueError):
    """A directive that cannot become an embed; the message says which line and why."""


@dataclass(frozen=True)
class EmbedRef:
    provider: str
    ref: str
    caption: str  # already HTML-escaped

    @property
    def anchor(self) -> str:
        return f"embed-{self.provider}-{self.ref}"

    @property
    def token(self) -> str:
        """What the "Show this once" form posts to show this embed."""
        return f"{self.provider}:{self.ref}"

    def marker(self) -> str:
        return (
            f'<gu-embed data-provider="{self.provider}" data-ref="{self.ref}">'
            f"{self.caption}</gu-embed>"
        )


@dataclass(frozen=True)
class EmbedView:
    """What the template needs to draw one embed for this reader."""

    embed: EmbedRef
    provider: Provider
    allowed: bool

    @property
    def src(self) -> str:
        return self.provider.embed_src(self.embed.ref)

    @property
    def page(self) -> str:
        return self.provider.page_href(self.embed.ref)

    @property
    def title(self) -> Markup:
        return Markup(self.embed.caption) or escape(f"Content from {self.provider.name}")


def replace_directives(
    markdown_text: str, is_declared: Callable[[str], bool]
) -> tuple[str, dict[str, str]]:
    """Swap each directive line for a unique placeholder paragraph, outside code blocks.

    Returns the new Markdown and a map from placeholder to the marker that replaces it once
    the HTML has been sanitised.
    """
    nonce = secrets.token_hex(8)
    lines: list[str] = []
    markers: dict[str, str] = {}
    in_fence = False
    for number, line in enumerate(markdown_text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else DIRECTIVE.match(line)
        if match is None:
            lines.append(line)
            continue
        embed = _embed_from(match, number, is_declared)
        placeholder = f"guembed{nonce}x{len(markers)}"
        markers[placeholder] = embed.marker()
        lines.extend(["", placeholder, ""])
    return "\n".join(lines), markers


def _embed_from(match: re.Match[str], line: int, is_declared: Callable[[str], bool]) -> EmbedRef:
    provider, ref = match["provider"], match["ref"]
    caption = " ".join((match["caption"] or "").split())
    if not PROVIDER_KEY.match(provider) or not is_declared(provider):
        raise EmbedDirectiveError(
            f"line {line}: embed provider {provider!r} is not declared in the consent registry"
        )
    if not REF.match(ref):
        raise EmbedDirectiveError(
            f"line {line}: embed id {ref!r} may use only letters, digits, '-' and '_' (64 at most)"
        )
    if len(caption) > MAX_CAPTION:
        raise EmbedDirectiveError(f"line {line}: embed caption is over {MAX_CAPTION} characters")
    return EmbedRef(provider=provider, ref=ref, caption=str(escape(caption)))


def insert_markers(sanitised_html: str, markers: dict[str, str]) -> str:
    for placeholder, marker in markers.items():
        sanitised_html = sanitised_html.replace(f"<p>{placeholder}</p>", marker)
    return sanitised_html


def body_and_pieces_size(parts: tuple[str | EmbedRef, ...]) -> int:
    """What a split body holds: its pieces, and the body itself as the key (as long)."""
    pieces = sum(len(part) if isinstance(part, str) else len(part.caption) for part in parts)
    return 2 * pieces + 64


@cached(
    LRUCache(maxsize=SPLIT_BODIES_CHARACTERS, getsizeof=body_and_pieces_size),
    lock=threading.Lock(),
)
def split_body(body_html: str) -> tuple[str | EmbedRef, ...]:
    """The stored body cut into HTML pieces and embeds; kept, since bodies change rarely, up
    to ``SPLIT_BODIES_CHARACTERS`` of bodies and pieces (a body is as long as its key)."""
    parts: list[str | EmbedRef] = []
    position = 0
    for match in MARKER.finditer(body_html):
        parts.append(body_html[position : match.start()])
        parts.append(EmbedRef(match["provider"], match["ref"], match["caption"]))
        position = match.end()
    parts.append(body_html[position:])
    return tuple(part for part in parts if part != "")


def embed_in(body_html: str, token: str) -> EmbedRef | None:
    """The embed of this body that ``token`` names, when its provider is declared; None for
    a token that names nothing here (another story's embed, a made-up value)."""
    for part in split_body(body_html):
        if isinstance(part, EmbedRef) and part.token == token:
            return part if declared_provider(part.provider) is not None else None
    return None


def body_for_reader(body_html: str, allow_once: str | None = None) -> list[Markup | EmbedView]:
    """Pieces for the article template: trusted HTML, and an EmbedView per declared embed.

    ``allow_once`` is the token of the embed the reader asked to see (``provider:id``, from
    the "Show this once" POST); it lets that one embed load in this response and changes
    nothing stored.
    """
    pieces: list[Markup | EmbedView] = []
    for part in split_body(body_html):
        if isinstance(part, str):
            pieces.append(Markup(part))
            continue
        provider = declared_provider(part.provider)
        if provider is None:
            continue
        once = allow_once == part.token and allow_provider_once(part.provider)
        allowed = once or provider_granted(part.provider)
        pieces.append(EmbedView(embed=part, provider=provider, allowed=allowed))
    return pieces


def body_for_feed(body_html: str) -> str:
    """Feeds cannot ask for consent, so each embed becomes a link to the provider's page."""

    def link(match: re.Match[str]) -> str:
        provider = declared_provider(match["provider"])
        if provider is None:
            return ""
        href = escape(provider.page_href(match["ref"]))
        text = match["caption"] or escape(f"Content from {provider.name}")
        return f'<p><a href="{href}">{text}</a> ({escape(provider.name)})</p>'

    return MARKER.sub(link, body_html)
