"""Conditional GET for feeds and sitemaps: strong validators over the final body.

Pages get theirs from the page cache (``globalupdates.pagecache``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Response, request
from werkzeug.http import is_resource_modified


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


def content_validators(body: bytes, last_modified: datetime) -> Validators:
    """Strong validators over the final body, for responses that are the same for everyone."""
    return Validators(
        etag=_digest(body), last_modified=last_modified.replace(tzinfo=UTC), weak=False
    )


def _digest(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:32]
