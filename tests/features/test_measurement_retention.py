"""Page views and timings are kept for PAGE_MEASUREMENT_RETENTION_DAYS, then pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from globalupdates.extensions import db
from globalupdates.features.models import PageTiming, PageView

NOW = datetime.now(UTC).replace(tzinfo=None)


def add_measurements(app, ages_in_days: list[int]) -> None:
    with app.app_context():
        for age in ages_in_days:
            made = NOW - timedelta(days=age)
            db.session.add(PageView(path=f"/age-{age}", reader="a" * 32, created_at=made))
            db.session.add(
                PageTiming(
                    path=f"/age-{age}",
                    created_at=made,
                    time_to_first_byte=1,
                    dom_content_loaded=2,
                    load_event=3,
                )
            )
        db.session.commit()


def kept_paths(app) -> tuple[list[str], list[str]]:
    with app.app_context():
        views = db.session.scalars(select(PageView.path).order_by(PageView.path)).all()
        timings = db.session.scalars(select(PageTiming.path).order_by(PageTiming.path)).all()
    return list(views), list(timings)


def test_prune_deletes_only_what_is_older_than_the_configured_retention(app_factory):
    app = app_factory(PAGE_MEASUREMENT_RETENTION_DAYS=30)
    add_measurements(app, [1, 29, 31, 400])
    result = app.test_cli_runner().invoke(args=["features", "prune"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 page views and 2 page timings" in result.output
    assert kept_paths(app) == (["/age-1", "/age-29"], ["/age-1", "/age-29"])


def test_the_default_retention_is_thirteen_months(app, runner):
    add_measurements(app, [390, 400])
    result = runner.invoke(args=["features", "prune"])
    assert result.exit_code == 0, result.output
    assert kept_paths(app) == (["/age-390"], ["/age-390"])


def test_older_than_days_overrides_the_setting_for_one_run(app, runner):
    add_measurements(app, [2, 10])
    result = runner.invoke(args=["features", "prune", "--older-than-days", "5"])
    assert result.exit_code == 0, result.output
    assert kept_paths(app) == (["/age-2"], ["/age-2"])


def test_a_nonsense_retention_is_refused_and_deletes_nothing(app_factory):
    app = app_factory(PAGE_MEASUREMENT_RETENTION_DAYS="forever")
    add_measurements(app, [1, 500])
    result = app.test_cli_runner().invoke(args=["features", "prune"])
    assert result.exit_code == 2
    assert "PAGE_MEASUREMENT_RETENTION_DAYS" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PageView)) == 2


def test_a_nonsense_option_is_refused_and_deletes_nothing(app, runner):
    add_measurements(app, [1, 500])
    result = runner.invoke(args=["features", "prune", "--older-than-days", "0"])
    assert result.exit_code == 2
    assert kept_paths(app) == (["/age-1", "/age-500"], ["/age-1", "/age-500"])
