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
from itsdangerous import (
    BadData,
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeTimedSerializer,
)

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
    check = app.extensions.get("session_check")
    if check is None:
        interface = app.session_interface
        if not isinstance(interface, SecureCookieSessionInterface):
            return None
        serializer = interface.get_signing_serializer(app)
        if serializer is None:
            return None
        check = app.extensions["session_check"] = SessionCheck(serializer)
    contents = check.contents(value, int(app.permanent_session_lifetime.total_seconds()))
    return contents if isinstance(contents, dict) else None


class SessionCheck:
    """The session serializer's own check, with the signer of the current key made once.

    itsdangerous makes a signer and derives its key from the secret on every ``loads``; here
    the derived key is computed once and handed to an identical signer that uses it as it is
    (``key_derivation="none"``), so a check costs one HMAC and reads the same signatures. A
    cookie signed with one of ``SECRET_KEY_FALLBACKS`` is checked by the serializer itself.
    """

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        current = serializer.make_signer(serializer.salt)
        self.serializer = serializer
        self.signer = TimestampSigner(
            current.derive_key(),
            salt=current.salt,
            sep=current.sep,
            key_derivation="none",
            digest_method=current.digest_method,
            algorithm=current.algorithm,
        )
        self.has_fallbacks = len(serializer.secret_keys) > 1

    def contents(self, value: str, max_age: int) -> Any:
        try:
            payload = self.signer.unsign(value, max_age=max_age)
        except SignatureExpired:
            return None
        except BadSignature:
            return self.with_fallbacks(value, max_age)
        try:
            return self.serializer.load_payload(payload)
        except BadData:
            return None

    def with_fallbacks(self, value: str, max_age: int) -> Any:
        if not self.has_fallbacks:
            return None
        try:
            return self.serializer.loads(value, max_age=max_age)
        except BadData:
            return None
