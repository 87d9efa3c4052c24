"""The signed-cookie session, marked Secure on any request that arrived over HTTPS.

``session_contents`` is the one check of a session cookie: Flask's session and the kept
responses in front of Flask (``keptresponses``) both call it, so the two cannot disagree on a
signature, an expiry or a cookie sent twice. Nothing is remembered between requests: a real
reader asks for a page a minute, so a memo of verified cookies would only ever help a bench.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadData, URLSafeTimedSerializer

from .cookies import request_cookies


class HttpsSecureSessionInterface(SecureCookieSessionInterface):
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
        if self.get_signing_serializer(app) is None:
            return None
        value = request_cookies(request.environ).get(self.get_cookie_name(app))
        return self.session_class(session_contents(app, value) or {})


def session_contents(app: Flask, value: str | None) -> dict[str, Any] | None:
    """What a session cookie holds, if its signature is this site's and it has not expired
    (``PERMANENT_SESSION_LIFETIME`` from when it was signed); None otherwise."""
    if not value:
        return None
    interface = app.session_interface
    if not isinstance(interface, SecureCookieSessionInterface):
        return None
    serializer = interface.get_signing_serializer(app)
    if serializer is None:
        return None
    max_age = int(app.permanent_session_lifetime.total_seconds())
    try:
        contents = serializer.loads(value, max_age=max_age)
    except BadData:
        return None
    return contents if isinstance(contents, dict) else None
