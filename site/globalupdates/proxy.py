"""Trust ``X-Forwarded-*`` headers only when the operator says how many proxies set them.

Off by default: a site reached directly must not let a client forge its address or scheme.
Behind one reverse proxy, set ``FLASK_PROXY_FIX_X_FOR=1`` and ``FLASK_PROXY_FIX_X_PROTO=1``
(and ``_X_HOST``, ``_X_PORT``, ``_X_PREFIX`` if the proxy sends those); each number is how
many proxies in front of the site append to that header.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

FORWARDED_HEADERS = ("x_for", "x_proto", "x_host", "x_port", "x_prefix")


def proxy_counts(app: Flask) -> dict[str, int]:
    counts = {}
    for header in FORWARDED_HEADERS:
        value = int(app.config.get(f"PROXY_FIX_{header.upper()}") or 0)
        if value < 0:
            raise ValueError(f"PROXY_FIX_{header.upper()} must be 0 or more, not {value}")
        counts[header] = value
    return counts


def trusts_proxy(app: Flask) -> bool:
    """True when the operator said a proxy stands in front (any ``PROXY_FIX_*`` above 0):
    only then may a header a proxy sets, such as the reader's country, be read at all."""
    return any(proxy_counts(app).values())


def init_app(app: Flask) -> None:
    counts = proxy_counts(app)
    if any(counts.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **counts)  # type: ignore[method-assign]
