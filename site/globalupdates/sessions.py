"""The signed-cookie session, with two changes that cost nothing in safety.

It is marked Secure on any request that arrived over HTTPS. And a cookie that has been
verified is remembered for a short while, so that a reader's next pages do not pay again
for checking its signature and decoding it: the cookie's value is the key, so only a value
that passed verification is ever found, and an entry lives at most ``VERIFIED_FOR`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

VERIFIED_FOR = 30.0
VERIFIED_COOKIES = 4096


class HttpsSecureSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self.verified: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.lock = threading.Lock()

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Built once per app: the keys are fixed once the app is made."""
        serializer = app.extensions.get("session_serializer")
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            app.extensions["session_serializer"] = serializer
        return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return super().open_session(app, request)
        now = time.monotonic()
        found = self.verified.get(value)
        if found is not None and now - found[0] < VERIFIED_FOR:
            return self.session_class(plain_copy(found[1]))
        session = super().open_session(app, request)
        if session:
            with self.lock:
                self.verified[value] = (now, plain_copy(dict(session)))
                while len(self.verified) > VERIFIED_COOKIES:
                    self.verified.popitem(last=False)
        return session


def plain_copy(value: Any) -> Any:
    """A copy of session contents (dicts, lists and scalars), so no request sees another's
    changes; much cheaper than ``copy.deepcopy`` for the few values a session holds."""
    if isinstance(value, dict):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item) for item in value]
    return value
