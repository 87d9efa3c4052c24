"""Conditional GET for pages that hold per-reader parts, and for feeds.

An article page differs from reader to reader only in what the consent engine decides (the
banner, gated scripts, embeds), in first-party preference cookies (text size) and in the
session's CSRF secret behind the forms. The validators cover exactly those, so a reader whose
choice changes never gets an old page, and a 304 is decided before anything is rendered.
The page's ETag is weak: two bodies for one validator differ only in the CSP nonce and the
timestamp inside a CSRF token, and either serves the reader equally well.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import Response, current_app, request, session
from werkzeug.http import is_resource_modified

from ..consent import current_consent, engine


@dataclass(frozen=True)
class Validators:
    etag: str
    last_modified: datetime
    weak: bool = True

    def matches_request(self) -> bool:
        """True when the reader's cached copy is still good."""
        if request.method not in ("GET", "HEAD"):
            return False
        return not is_resource_modified(
            request.environ, etag=self.etag, last_modified=self.last_modified
        )

    def apply(self, response: Response) -> Response:
        response.set_etag(self.etag, weak=self.weak)
        response.last_modified = self.last_modified
        return response

    def not_modified(self) -> Response:
        """A bare 304: validators only, so a cache keeps the stored page's other headers."""
        return self.apply(Response(status=304))


def render_version(template_folder: Path, static_folder: Path) -> str:
    """A digest of the templates, styles and scripts, so a deploy changes every validator."""
    digest = hashlib.sha256()
    for folder, pattern in (
        (template_folder, "*"),
        (static_folder, "*.css"),
        (static_folder, "*.js"),
    ):
        for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def reader_validators(modified_at: datetime, *page_parts: object) -> Validators:
    """Validators for a page whose body depends on the reader as well as on stored content."""
    state = current_consent()
    reader = {
        "granted": sorted(state.granted),
        "banner": state.show_banner,
        "gpc": state.gpc,
        "cookies": preference_cookies(),
        "csrf": _digest(str(session.get("csrf_token", ""))),
    }
    etag = _digest(
        json.dumps(
            [current_app.extensions["articles"].render_version, engine().registry.notice_hash,
             modified_at.isoformat(), reader, [str(part) for part in page_parts]],
            sort_keys=True,
        )
    )  # fmt: skip
    last_modified = modified_at
    if state.choice is not None:
        last_modified = max(last_modified, state.choice.made_at.replace(tzinfo=None))
    return Validators(etag=etag, last_modified=last_modified.replace(tzinfo=UTC))


def preference_cookies() -> list[str]:
    """Declared optional first-party cookies the reader sent; they may change the page."""
    registry = engine().registry
    sent: Iterable[str] = sorted(request.cookies)
    values = []
    for name in sent:
        found = registry.find_cookie(name)
        if found is not None and not found[0].required:
            values.append(f"{name}={request.cookies[name][:100]}")
    return values


def content_validators(body: bytes, last_modified: datetime) -> Validators:
    """Strong validators over the final body, for responses that are the same for everyone."""
    return Validators(
        etag=_digest(body), last_modified=last_modified.replace(tzinfo=UTC), weak=False
    )


def _digest(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:32]
