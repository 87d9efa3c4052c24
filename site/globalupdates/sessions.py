from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface


class ConsentAwareSessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, marked Secure on any request that arrived over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure
