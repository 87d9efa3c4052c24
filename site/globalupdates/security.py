"""Response headers every page and file gets, whatever the reader's consent.

The consent engine sets the Content-Security-Policy (it depends on the reader's choice);
this module adds the rest.
"""

from __future__ import annotations

from flask import Response, current_app, request

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    present = {name.lower() for name, _ in response.headers}
    response.headers.extend(
        (name, value) for name, value in STATIC_HEADERS.items() if name.lower() not in present
    )
    if request.is_secure:
        max_age = int(current_app.config["HSTS_MAX_AGE"])
        response.headers["Strict-Transport-Security"] = f"max-age={max_age}; includeSubDomains"
    return response
