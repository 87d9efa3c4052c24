"""The regime the cookie audit visits as (`X-Consent-Audit-Regime`): honoured only from
`CONSENT_AUDIT_ALLOWED`, in place of the edge's place, for that request alone; recorded in the
proof of a choice made under it; and never stored by the kept responses, the page cache or
nginx, so neither the audit nor a reader is ever given the other's page."""

from __future__ import annotations

import logging

import pytest

from globalupdates.extensions import page_cache
from tests.serving.test_kept_responses import flask_dispatches
from tests.serving.test_metrics import grew, scrape
from tests.support.consent import choose, gated_categories, records
from tests.support.html import select

PAGE = "/"
OPT_OUT = {"X-Consent-Audit-Regime": "opt-out"}
OPT_IN = {"X-Consent-Audit-Regime": "opt-in"}
ELSEWHERE = "192.0.2.7"
EDGE = {"COUNTRY_HEADER": "X-Country", "REGION_HEADER": "X-Country-Region", "PROXY_FIX_X_FOR": 1}
CALIFORNIA = {"X-Country": "US", "X-Country-Region": "CA"}
AUDIT_REGIMES = "globalupdates_audit_regime_requests_total"


def shown_regime(html: str) -> str:
    return select(html, "body")[0].get("data-consent-regime")


def get(app, path: str = PAGE, address: str | None = None, **headers: str):
    client = app.test_client(use_cookies=False)
    if address is not None:
        client.environ_base["REMOTE_ADDR"] = address
    return client.get(path, headers=headers)


def stored_pages() -> int:
    return page_cache.cache.usage()[0]


def test_from_an_allowed_address_the_named_regime_decides_the_page_and_no_cache_may_keep_it(app):
    before = scrape(app.test_client())
    answer = get(app, **OPT_OUT)
    html = answer.get_data(as_text=True)
    assert shown_regime(html) == "opt-out"
    assert gated_categories(html) == {"analytics", "performance"}
    assert select(html, "footer a.do-not-sell"), "the opt-out footer's link"
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert answer.headers["X-Accel-Expires"] == "0"
    assert grew(before, scrape(app.test_client()), AUDIT_REGIMES, honoured="yes") == 1


def test_from_any_other_address_the_header_is_ignored_and_logged(app, caplog):
    before = scrape(app.test_client())
    with caplog.at_level(logging.WARNING):
        answer = get(app, address=ELSEWHERE, **OPT_OUT)
    html = answer.get_data(as_text=True)
    assert shown_regime(html) == "opt-in"
    assert gated_categories(html) == set()
    assert not select(html, "a.do-not-sell")
    assert "no-store" not in answer.headers["Cache-Control"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "X-Consent-Audit-Regime ignored" in m and "CONSENT_AUDIT_ALLOWED" in m for m in warnings
    )
    assert not any(ELSEWHERE in m for m in warnings), "the address is logged cut to its network"
    assert grew(before, scrape(app.test_client()), AUDIT_REGIMES, honoured="no") == 1


def test_a_regime_the_registry_lacks_is_ignored_and_logged(app, caplog):
    with caplog.at_level(logging.WARNING):
        answer = get(app, **{"X-Consent-Audit-Regime": "anything"})
    assert shown_regime(answer.get_data(as_text=True)) == "opt-in"
    assert any("none of the registry's regimes" in r.getMessage() for r in caplog.records)


def test_the_named_regime_overrides_the_edges_place_for_that_request_only(app_factory):
    app = app_factory(**EDGE)
    audited = get(app, **CALIFORNIA, **OPT_IN)
    assert shown_regime(audited.get_data(as_text=True)) == "opt-in"
    assert shown_regime(get(app, **CALIFORNIA).get_data(as_text=True)) == "opt-out"


def test_the_audits_regime_is_not_a_regime_disagreement_with_the_proxy(app_factory):
    app = app_factory(**EDGE)
    before = scrape(app.test_client())
    answer = get(app, **CALIFORNIA, **OPT_IN, **{"X-Cache-Key-Regime": "opt-out"})
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert grew(before, scrape(app.test_client()), "globalupdates_regime_disagreements_total") == 0


def test_the_kept_responses_neither_answer_nor_keep_an_audit_regimes_page(app):
    seen = flask_dispatches(app)
    for _ in range(2):
        assert shown_regime(get(app, **OPT_OUT).get_data(as_text=True)) == "opt-out"
    assert seen == [PAGE, PAGE], "each audit request reached Flask"
    for _ in range(2):
        assert shown_regime(get(app).get_data(as_text=True)) == "opt-in"
    assert seen == [PAGE, PAGE, PAGE], "the reader's page was kept, the audit's never was"
    assert shown_regime(get(app, **OPT_OUT).get_data(as_text=True)) == "opt-out"
    assert seen == [PAGE] * 4, "the kept reader's page is not served to the audit"


def test_the_page_cache_neither_answers_nor_keeps_an_audit_regimes_page(app):
    path = f"{PAGE}?audit=page-cache"
    stored = stored_pages()
    assert shown_regime(get(app, path, **OPT_OUT).get_data(as_text=True)) == "opt-out"
    assert stored_pages() == stored, "nothing kept for the audit"
    assert shown_regime(get(app, path).get_data(as_text=True)) == "opt-in"
    assert stored_pages() == stored + 1, "the reader's page is kept"
    assert shown_regime(get(app, path, **OPT_OUT).get_data(as_text=True)) == "opt-out"
    assert stored_pages() == stored + 1


@pytest.mark.parametrize(
    "headers, regime", [(OPT_OUT, "opt-out"), (OPT_IN, "opt-in"), ({}, "opt-in")]
)
def test_a_choice_made_under_the_audits_regime_records_that_regime(app, headers, regime):
    client = app.test_client()
    assert choose(client, "save", ("functional",), headers=headers).status_code == 303
    assert [record.regime for record in records(app)] == [regime]


def test_an_opt_out_default_left_on_under_the_audits_regime_is_asked_again_elsewhere(app):
    client = app.test_client()
    assert choose(client, "save", ("analytics",), headers=OPT_OUT).status_code == 303
    audited = client.get(PAGE, headers=OPT_OUT).get_data(as_text=True)
    assert gated_categories(audited) == {"analytics"}
    assert shown_regime(audited) == "opt-out"
    elsewhere = client.get(PAGE).get_data(as_text=True)
    assert gated_categories(elsewhere) == set(), "a default is not consent in an opt-in place"
