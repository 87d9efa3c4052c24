"""A reader erases the page views tied to their reader cookie from Cookie settings: exactly
theirs go, the cookie expires, and the proof of their consent stays."""

from __future__ import annotations

from sqlalchemy import func, select

from globalupdates.extensions import db
from globalupdates.features.models import PageTiming, PageView
from globalupdates.features.pageviews import flush_page_views
from tests.support.consent import SAME_ORIGIN, choose, records
from tests.support.html import attribute, one

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"

ERASE = "/features/reading-data/erase"
TIMING = {"path": ARTICLE, "ttfb": 5, "domContentLoaded": 9, "load": 20}


def counting_reader(app, views: int):
    """A reader who granted analytics and performance and read ``views`` pages."""
    client = app.test_client()
    choose(client, "save", ("analytics", "performance"))
    for _ in range(views):
        assert client.post(
            "/features/pageview", json={"path": ARTICLE}, headers=SAME_ORIGIN
        ).status_code in (200, 201)
        assert client.post("/features/timing", json=TIMING, headers=SAME_ORIGIN).status_code in (
            200,
            201,
        )
    return client


def reader_value(client) -> str:
    return client.get_cookie("gu_reader").value


def views_by_reader(app) -> dict[str, int]:
    """The views stored, once this worker has written what it holds."""
    flush_page_views(app)
    with app.app_context():
        rows = db.session.execute(
            select(PageView.reader, func.count()).group_by(PageView.reader)
        ).all()
    return dict(rows)


def timing_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(PageTiming))


def test_erasure_removes_exactly_the_readers_page_views(app):
    leaving, staying = counting_reader(app, 2), counting_reader(app, 3)
    staying_value = reader_value(staying)
    proofs = [r.hash for r in records(app)]
    response = leaving.post(ERASE, headers=SAME_ORIGIN)
    assert response.status_code == 303
    assert response.headers["Location"] == "/consent?erased=2#reading-data"
    assert views_by_reader(app) == {staying_value: 3}
    assert timing_count(app) == 5
    assert [r.hash for r in records(app)] == proofs


def test_erasure_expires_the_reader_cookie_where_it_was_set(app):
    reader = counting_reader(app, 1)
    response = reader.post(ERASE, headers=SAME_ORIGIN)
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("gu_reader=")]
    assert "Max-Age=0" in header and "Path=/" in header
    assert reader.get_cookie("gu_reader") is None
    assert response.headers["Cache-Control"] == "no-store"


def test_the_preferences_page_reports_the_erasure_and_keeps_the_proof(app):
    reader = counting_reader(app, 2)
    page = reader.post(ERASE, headers=SAME_ORIGIN, follow_redirects=True).get_data(as_text=True)
    assert "we deleted 2 page views counted under your reader cookie" in page
    assert "The records of your cookie choices are kept" in page
    assert "Page load timings carry no value that links them to you" in page


def test_a_reader_without_a_reader_cookie_erases_nothing(app):
    counting_reader(app, 2)
    stranger = app.test_client()
    choose(stranger, "reject_all")
    response = stranger.post(ERASE, headers=SAME_ORIGIN)
    assert response.headers["Location"] == "/consent?erased=0#reading-data"
    assert sum(views_by_reader(app).values()) == 2


def test_a_made_up_reader_value_erases_nothing(app):
    counting_reader(app, 2)
    guesser = app.test_client()
    for value in ("%", "' OR 1=1 --", "x" * 300):
        guesser.set_cookie("gu_reader", value)
        assert guesser.post(ERASE, headers=SAME_ORIGIN).status_code == 303
    assert sum(views_by_reader(app).values()) == 2


def test_erasure_from_another_site_is_refused_and_changes_nothing(app):
    reader = counting_reader(app, 2)
    response = reader.post(ERASE, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert sum(views_by_reader(app).values()) == 2
    assert reader.get_cookie("gu_reader") is not None


def test_the_erasure_form_is_on_the_preferences_page(client):
    page = client.get("/consent").get_data(as_text=True)
    form = one(page, f'form[action="{ERASE}"]')
    assert attribute(form, "method") == "post"
    assert "Erase my page views" in form.get_text(" ")
