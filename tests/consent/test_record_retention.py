"""consent prune, run with no date, deletes what the retention period has passed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from globalupdates.consent.proof.chain import append_to_chain
from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.extensions import db


def record_made(app, days_ago: int) -> None:
    with app.app_context():
        append_to_chain(
            consent_id=str(uuid.uuid4()),
            created_at=datetime.now(UTC) - timedelta(days=days_ago),
            action="save",
            categories=["necessary"],
            revision=1,
            notice_hash="0" * 64,
            gpc=False,
        )


def ages_kept(app) -> list[int]:
    with app.app_context():
        made = db.session.scalars(db.select(ConsentRecord.created_at).order_by(ConsentRecord.id))
        now = datetime.now(UTC).replace(tzinfo=None)
        return [(now - moment).days for moment in made]


def test_prune_without_a_date_keeps_records_for_the_retention_period_after_they_lapse(app):
    """Defaults: 1095 days of retention after a choice of at most 182 days stops counting."""
    for days_ago in (1400, 1290, 1270, 400, 10):
        record_made(app, days_ago)
    result = app.test_cli_runner().invoke(args=["consent", "prune", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Pruned 2 record(s)" in result.output
    assert ages_kept(app) == [1270, 400, 10]
    verified = app.test_cli_runner().invoke(args=["consent", "verify"])
    assert verified.exit_code == 0, verified.output


def test_the_retention_setting_moves_the_cutoff(app_factory):
    app = app_factory(CONSENT_RECORD_RETENTION_DAYS=30, CONSENT_LIFETIME_DAYS=30)
    for days_ago in (90, 61, 59, 1):
        record_made(app, days_ago)
    result = app.test_cli_runner().invoke(args=["consent", "prune", "--yes"])
    assert "Pruned 2 record(s)" in result.output
    assert ages_kept(app) == [59, 1]


def test_an_explicit_date_still_wins(app):
    for days_ago in (1400, 10):
        record_made(app, days_ago)
    before = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    result = app.test_cli_runner().invoke(args=["consent", "prune", "--before", before, "--yes"])
    assert "Pruned 2 record(s)" in result.output
    assert ages_kept(app) == []
