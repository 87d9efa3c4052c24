"""Whole responses to page requests, kept in front of Flask for every reader in a variant.

Most page views come from readers who already chose, each asking for a page now and then, so
this layer never relies on having seen a reader before. For each GET it works out, without
Flask, everything the response depends on (``pagecache.kept_key``): the request as a page
depends on it, gzip or not, the bare ``/``'s negotiation, the content version, the other
cookies' names, and the reader's variant, from the session cookie checked with the same
function Flask's session uses (``sessions.session_contents``) and resolved with the same
function (``consent.model.choice.resolve``). A response Flask gave under that very key, with no
``Set-Cookie``, is kept and answers every later request with the same key. Flask notes the
key it worked out in the environ, and a response is kept only when both layers agree.

Four kinds of request always go through Flask: one whose stored choice GPC revises (Flask
records the opt-out once and rewrites the session), one whose variant cookie is missing, wrong
or doubled (Flask sets it right), one that names a regime for the cookie audit
(``X-Consent-Audit-Regime``: only Flask, after ``ProxyFix``, can tell whether its address may;
its response is never kept), and anything but a GET.

The kept responses are a ``cachetools.TTLCache`` bounded in bytes (``KEPT_RESPONSE_BYTES``,
bodies and headers counted; least recently used first out) and in time
(``KEPT_RESPONSE_SECONDS``); an edit needs neither, since the content version is in the key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import unquote_etag

from .consent.model.choice import ConsentState, gpc_signal, resolve
from .consent.model.variant_cookie import is_settled
from .consent.web.audit_marks import carries_audit_regime
from .consent.web.engine import request_regime
from .cookies import request_cookies
from .httpheaders import forbids_storing, not_modified
from .metrics.instruments import CACHE_BYTES, CACHE_ENTRIES
from .metrics.requests import GROUP, KEPT, LAYER, count_answer
from .pagecache import KEPT_KEY, kept_key
from .sessions import session_contents

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
ENTITY_HEADERS = frozenset({"content-length", "content-type", "content-encoding"})
ENTRY_OVERHEAD = 256  # bytes an entry costs beyond its body and headers, roughly


@dataclass(frozen=True)
class KeptResponse:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    group: str = "page"

    @property
    def size(self) -> int:
        headers = sum(len(name) + len(value) for name, value in self.headers)
        return len(self.body) + headers + ENTRY_OVERHEAD

    def etag(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "etag":
                return unquote_etag(value)[0]
        return None

    def answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        environ[LAYER] = KEPT
        etag = self.etag() if "HTTP_IF_NONE_MATCH" in environ else None
        if etag is not None and not_modified(environ, etag):
            start_response("304 NOT MODIFIED", not_modified_headers(self.headers))
            count_answer(environ, self.group, 304, started)
            return []
        start_response(self.status, list(self.headers))
        count_answer(environ, self.group, int(self.status[:3]), started)
        return [self.body]


def not_modified_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in ENTITY_HEADERS]


def is_keepable(status: str, headers: list[tuple[str, str]]) -> bool:
    """A whole page that sets no cookie and that some cache may keep."""
    names = {name.lower(): value for name, value in headers}
    control = names.get("cache-control")
    return (
        status.startswith("200 ")
        and "set-cookie" not in names
        and control is not None
        and not forbids_storing(control)
    )


class KeptResponses:
    """WSGI middleware in front of Flask: see the module's docstring."""

    def __init__(
        self, app: Flask, wsgi_app: Callable[..., Any], *, max_bytes: int, lifetime: float
    ):
        self.app = app
        self.wsgi_app = wsgi_app
        self.kept: TTLCache[tuple[object, ...], KeptResponse] = TTLCache(
            maxsize=max_bytes, ttl=lifetime, getsizeof=lambda kept: kept.size
        )
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or carries_audit_regime(environ):
            return self.wsgi_app(environ, start_response)
        key = self.key_for(environ)
        if key is not None:
            with self.lock:
                kept = self.kept.get(key)
            if kept is not None:
                return kept.answer(environ, start_response)
        return self.through_flask(environ, start_response, key)

    def reader_state(self, environ: Environ, cookies: Mapping[str, str]) -> ConsentState:
        """The reader's consent state, as ``consent.web.engine.current_consent`` resolves it in
        Flask, from the session cookie checked as Flask's session checks it."""
        engine = self.app.extensions["consent"]
        contents = session_contents(self.app, cookies.get(self.app.config["SESSION_COOKIE_NAME"]))
        return resolve(
            contents or {},
            engine.registry,
            now=datetime.now(UTC),
            lifetime=engine.lifetime,
            gpc=gpc_signal(environ.get("HTTP_SEC_GPC")),
            regime=request_regime(engine, environ),
        )

    def key_for(self, environ: Environ) -> tuple[object, ...] | None:
        """The key this request's response may be kept and found under, or None when the
        request must go through Flask."""
        cookies = request_cookies(environ)
        state = self.reader_state(environ, cookies)
        if state.gpc_revised is not None or not is_settled(self.app, environ, cookies, state):
            return None
        try:
            return kept_key(self.app, environ, state, cookies)
        except SQLAlchemyError:
            return None  # the content version cannot be read: Flask answers for the outage

    def through_flask(
        self, environ: Environ, start_response: StartResponse, key: tuple[object, ...] | None
    ) -> Iterable[bytes]:
        seen: list[Any] = []

        def remember(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            seen[:] = [status, headers]
            return start_response(status, headers, *exc_info)

        answer = self.wsgi_app(environ, remember)
        flask_key = environ.get(KEPT_KEY)
        if key is None or flask_key is None or not seen or not is_keepable(*seen):
            return answer
        if flask_key != key:
            self.app.logger.info(
                "kept responses: Flask worked out another key for %s (content version moved?)",
                environ.get("PATH_INFO", "")[:200],
            )
            return answer
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        kept = KeptResponse(seen[0], list(seen[1]), body, environ.get(GROUP, "page"))
        if kept.size <= self.kept.maxsize:
            with self.lock:
                self.kept[key] = kept
                entries, size = len(self.kept), self.kept.currsize
            CACHE_ENTRIES.labels("kept_responses").set(entries)
            CACHE_BYTES.labels("kept_responses").set(size)
        return [body]


def init_app(app: Flask) -> None:
    """Put the kept responses in front of Flask, unless ``KEPT_RESPONSE_BYTES`` is 0."""
    max_bytes = int(app.config["KEPT_RESPONSE_BYTES"])
    if max_bytes <= 0:
        return
    app.wsgi_app = KeptResponses(  # type: ignore[method-assign]
        app,
        app.wsgi_app,
        max_bytes=max_bytes,
        lifetime=float(app.config["KEPT_RESPONSE_SECONDS"]),
    )
