"""Where browsers send Content-Security-Policy violation reports. Each is logged as a warning:
a report means a script or request slipped past the consent gate, or an attack was stopped."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from .csp import REPORT_PATH

bp = Blueprint("csp_reports", __name__)

REPORT_TYPES = ("application/csp-report", "application/reports+json", "application/json")
MAX_REPORT_BYTES = 16 * 1024
FIELD_LIMIT = 200
FIELDS = (
    ("effective-directive", "effectiveDirective"),
    ("violated-directive", "violatedDirective"),
    ("blocked-uri", "blockedURL"),
    ("document-uri", "documentURL"),
    ("source-file", "sourceFile"),
    ("line-number", "lineNumber"),
)


def printable(value: Any) -> str:
    """A short, single-line rendering that cannot forge log lines."""
    text = str(value)[:FIELD_LIMIT]
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def violations(payload: Any) -> list[dict[str, Any]]:
    """The violation bodies of either report format: ``report-uri``'s or the Reporting API's."""
    if isinstance(payload, dict) and isinstance(payload.get("csp-report"), dict):
        return [payload["csp-report"]]
    if isinstance(payload, list):
        return [
            item["body"]
            for item in payload[:20]
            if isinstance(item, dict)
            and item.get("type") == "csp-violation"
            and isinstance(item.get("body"), dict)
        ]
    return []


def summary(body: dict[str, Any]) -> str:
    parts = []
    for legacy, modern in FIELDS:
        value = body.get(legacy, body.get(modern))
        if value not in (None, ""):
            parts.append(f"{legacy}={printable(value)}")
    return " ".join(parts) or "(empty report)"


def refuse(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status


@bp.post(REPORT_PATH)
def receive_report() -> ResponseReturnValue:
    if request.mimetype not in REPORT_TYPES:
        return refuse(415, gettext("Send a CSP violation report as JSON."))
    too_large = (413, gettext("A CSP report may be at most 16 KB."))
    if (request.content_length or 0) > MAX_REPORT_BYTES:
        return refuse(*too_large)
    raw = request.get_data(cache=False)
    if len(raw) > MAX_REPORT_BYTES:
        return refuse(*too_large)
    try:
        found = violations(json.loads(raw))
    except (ValueError, RecursionError):
        return refuse(400, gettext("The CSP report is not valid JSON."))
    if not found:
        return refuse(400, gettext("The body holds no CSP violation report."))
    for body in found:
        current_app.logger.warning("CSP violation: %s", summary(body))
    return Response(status=204)
