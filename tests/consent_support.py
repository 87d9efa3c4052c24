"""Helpers for the consent tests: reading records, stored choices and pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient

from globalupdates.assets import static_url
from globalupdates.consent.records import ConsentRecord
from globalupdates.extensions import db

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"
OPTIONAL = ("functional", "analytics", "performance", "advertisement")
GPC = {"Sec-GPC": "1"}


def records(app: Flask) -> list[ConsentRecord]:
    with app.app_context():
        found = list(db.session.scalars(db.select(ConsentRecord).order_by(ConsentRecord.id)))
        db.session.expunge_all()
        return found


def stored_choice(client: FlaskClient) -> dict | None:
    with client.session_transaction() as session:
        return session.get("consent")


def store_choice(
    client: FlaskClient,
    categories: Iterable[str],
    *,
    made_at: datetime | None = None,
    revision: int = 1,
    gpc: bool = False,
    consent_id: str | None = None,
) -> str:
    """Put a choice straight into the reader's session, as an earlier visit would have."""
    consent_id = consent_id or str(uuid.uuid4())
    with client.session_transaction() as session:
        session["consent"] = {
            "id": consent_id,
            "categories": sorted({"necessary", *categories}),
            "made_at": int((made_at or datetime.now(UTC)).timestamp()),
            "revision": revision,
            "gpc": gpc,
        }
        session.permanent = True
    return consent_id


def gated_categories(html: str) -> set[str]:
    return set(re.findall(r'<script [^>]*data-category="([a-z]+)"', html))


def checked_boxes(html: str) -> set[str]:
    return set(re.findall(r'<input type="checkbox" id="([a-z]+)"[^>]*checked', html))


def set_cookie_names(response) -> list[str]:
    return [header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")]


def static_path(app: Flask, filename: str) -> str:
    """The path a page links for a file in ``static/``: its fingerprinted name."""
    with app.test_request_context():
        return static_url(filename)
