"""Consent as the tests and the bench see it: a reader's choice posted from a page, the
choice kept in the session, the records stored, the cookies set, and an operator's registry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from globalupdates.assets import static_url
from globalupdates.consent.model.registry_file import BUILTIN_REGISTRY, load_registry
from globalupdates.consent.proof.chain import append_to_chain
from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.consent.proof.seals import SIGNED_FIELDS, canonical_json
from globalupdates.extensions import db
from tests.support.html import attributes

OPTIONAL = ("functional", "analytics", "performance", "advertisement")
BUILTIN_REVISION = load_registry(None).revision
REVISION_LINE = re.compile(r"^revision = \d+$", re.MULTILINE)
GPC = {"Sec-GPC": "1"}
# What a browser says of a post from one of the site's own pages; the forms carry no token.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
SESSION_COOKIE = "gu_session"
# What a first-visit page tells caches under the default settings.
FIRST_VISIT_CACHE_CONTROL = "public, max-age=0, s-maxage=30, stale-if-error=600"


def records(app: Flask) -> list[ConsentRecord]:
    with app.app_context():
        found = list(db.session.scalars(db.select(ConsentRecord).order_by(ConsentRecord.id)))
        db.session.expunge_all()
        return found


def append_old_record(
    app: Flask,
    action: str,
    revision: int,
    *,
    consent_id: str | None = None,
    language: str | None = None,
) -> None:
    """Append a record as records were made before the later fields of the signed form: none
    of them but ``language`` where given, so it is signed in the form of its time."""
    with app.app_context():
        append_to_chain(
            consent_id=consent_id or str(uuid.uuid4()),
            created_at=datetime(2026, 11, 1, 9, tzinfo=UTC),
            action=action,
            categories=["necessary", "functional"],
            revision=revision,
            notice_hash="c" * 64,
            gpc=False,
            language=language,
        )


def signed_form(record: ConsentRecord, **later_fields: object) -> bytes:
    """The bytes a record's hash is the HMAC of, written out here field for field: the fields
    every record signs, read off ``record``, and ``later_fields`` (the fields signed once set)
    as the test expects them, not as the record holds them."""
    return canonical_json(
        {**{name: getattr(record, name) for name in SIGNED_FIELDS}, **later_fields}
    )


def stored_choice(client: FlaskClient) -> dict | None:
    with client.session_transaction() as session:
        return session.get("consent")


def store_choice(
    client: FlaskClient,
    categories: Iterable[str],
    *,
    made_at: datetime | None = None,
    revision: int | None = None,
    gpc: bool = False,
    consent_id: str | None = None,
    services: Iterable[str] | None = None,
) -> str:
    """Put a choice straight into the reader's session, as an earlier visit would have (under
    the built-in registry's revision unless another is given)."""
    consent_id = consent_id or str(uuid.uuid4())
    with client.session_transaction() as session:
        session["consent"] = {
            "id": consent_id,
            "categories": sorted({"necessary", *categories}),
            "made_at": int((made_at or datetime.now(UTC)).timestamp()),
            "revision": BUILTIN_REVISION if revision is None else revision,
            "gpc": gpc,
        }
        if services is not None:
            session["consent"]["services"] = sorted(services)
        session.permanent = True
    return consent_id


def gated_categories(html: str) -> set[str]:
    """The categories whose scripts the page runs."""
    return set(attributes(html, "script[data-category]", "data-category"))


def checked_boxes(html: str) -> set[str]:
    """The categories the preferences page shows ticked."""
    return set(attributes(html, "input[type=checkbox][checked]:not([name=services])", "id"))


def checked_services(html: str) -> set[str]:
    """The services the preferences page shows ticked."""
    return set(attributes(html, "input[type=checkbox][name=services][checked]", "value"))


def cookie_value(set_cookie_headers: Iterable[str], name: str = SESSION_COOKIE) -> str | None:
    """The value the first of these ``Set-Cookie`` headers that sets ``name`` gives it."""
    for header in set_cookie_headers:
        cookie_name, _, rest = header.partition("=")
        if cookie_name.strip() == name:
            return rest.split(";", 1)[0]
    return None


def set_cookie_names(response) -> list[str]:
    return [header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")]


def static_path(app: Flask, filename: str) -> str:
    """The path a page links for a file in ``static/``: its fingerprinted name."""
    with app.test_request_context():
        return static_url(filename)


def in_edition(path: str, language: str) -> str:
    """A page's path in the edition of ``language``: English at the root, the others under
    their own prefix (``/de/consent``)."""
    return path if language == "en" else f"/{language}{path}"


def choose(
    client: FlaskClient,
    action: str,
    categories: tuple[str, ...] = (),
    *,
    page: str | None = None,
    next_path: str | None = None,
    headers: dict[str, str] | None = None,
    language: str = "en",
    services: tuple[str, ...] = (),
    exact_services: bool = False,
):
    """Open a page as a reader and post a consent choice from it, as the browser would:
    with ``Sec-Fetch-Site: same-origin`` (and no token: there is none), to the preferences
    of the page's edition (``language``). ``services`` are the service boxes ticked;
    ``exact_services`` posts as the consent script does."""
    client.get(page or in_edition("/consent", language), headers=headers)
    form: dict[str, str | list[str]] = {"action": action}
    form.update({key: "on" for key in categories})
    if services:
        form["services"] = list(services)
    if exact_services:
        form["exact_services"] = "1"
    if next_path is not None:
        form["next"] = next_path
    return client.post(
        in_edition("/consent", language), data=form, headers={**SAME_ORIGIN, **(headers or {})}
    )


# An operator's third-party analytics tag and its cookies, for ``operator_registry``.
THIRD_PARTY = """
  [[categories.scripts]]
  src = "https://stats.example.net/tag.js"
  origins = ["https://stats.example.net"]

  [[categories.cookies]]
  name = "_ex_*"
  domain = ".example.org"
  max_age = 3600
  provider = "Example Stats"
  description = "Counts visits for the example statistics service."

  [categories.cookies.de]
  description = "Zählt Besuche für den Beispiel-Statistikdienst."

  [categories.cookies.fr]
  description = "Compte les visites pour le service de statistiques d'exemple."
"""


def operator_registry(
    tmp_path: Path, extra_analytics: str = "", revision: int = BUILTIN_REVISION
) -> Path:
    """The built-in registry with a raised revision and extra analytics lines, written where
    an operator would point ``CONSENT_REGISTRY``."""
    text = BUILTIN_REGISTRY.read_text(encoding="utf-8")
    text = with_revision(text, revision)
    marker = '  static = "features/pageviews.js"\n'
    text = text.replace(marker, marker + extra_analytics, 1)
    path = tmp_path / "registry.toml"
    path.write_text(text, encoding="utf-8")
    return path


def with_revision(registry_text: str, revision: int) -> str:
    """A registry's text with its ``revision`` set, as an operator raises it after an edit."""
    changed, found = REVISION_LINE.subn(f"revision = {revision}", registry_text, count=1)
    assert found == 1, "the registry has no top-level revision line"
    return changed
