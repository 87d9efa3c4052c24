"""The regime the cookie audit names (`X-Consent-Audit-Regime`) behind deploy/nginx.conf as
deployed: nginx neither answers such a request from its cache nor stores its answer, so the
audit never gets a stored page of another regime and no reader ever gets the audit's."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.test_nginx_variants import behind_nginx, reader, visit, visit_once_stored
from tests.support.html import select
from tests.support.nginx_server import deployed_nginx
from tests.support.proxied_site import Answer, Site, fresh, static_root_for_nginx

pytestmark = pytest.mark.slow

AUDIT_OPT_OUT = {"X_Consent_Audit_Regime": "opt-out"}


@pytest.fixture(scope="module")
def site(migrated_sqlite: Path, tmp_path_factory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("audit-regime")
    database = folder / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    with (
        static_root_for_nginx() as site_root,
        behind_nginx(database, folder, site_root) as server,
        deployed_nginx(server.port, site_root) as nginx,
    ):
        yield Site(port=nginx.port, app_port=server.port)
        nginx.stop()
        assert not re.search(r"\[(emerg|alert|crit)\]", nginx.error_log()), nginx.error_log()


def regime_of(answer: Answer) -> str:
    return select(answer.text(), "body")[0].get("data-consent-regime")


def test_a_first_visits_stored_page_is_never_the_audits_and_the_audits_is_never_stored(site):
    path = fresh("/", "audit-first-visit")
    assert regime_of(visit(site, path)) == "opt-in"
    stored = visit_once_stored(site, path)
    assert stored.cache_status == "HIT"
    audited = visit(site, path, **AUDIT_OPT_OUT)
    assert audited.cache_status == "BYPASS", "the stored opt-in page is not served to the audit"
    assert regime_of(audited) == "opt-out"
    assert audited.header("Cache-Control") == "private, no-store"
    again = visit(site, path)
    assert (again.cache_status, regime_of(again)) == ("HIT", "opt-in")


def test_an_audits_page_asked_for_first_leaves_nothing_in_the_cache(site):
    path = fresh("/", "audit-before-readers")
    for _ in range(2):
        audited = visit(site, path, **AUDIT_OPT_OUT)
        assert (audited.cache_status, regime_of(audited)) == ("BYPASS", "opt-out")
    first_reader = visit(site, path)
    assert first_reader.cache_status == "MISS", "the audit's answers were not stored"
    assert regime_of(first_reader) == "opt-in"


def test_a_returning_readers_stored_page_is_never_served_to_the_audit(site):
    cookies = reader(site, "reject_all")
    path = fresh("/", "audit-returning")
    visit(site, path, cookies)
    assert visit_once_stored(site, path, cookies).cache_status == "HIT"
    audited = visit(site, path, cookies, **AUDIT_OPT_OUT)
    assert (audited.cache_status, regime_of(audited)) == ("BYPASS", "opt-out")
    again = visit(site, path, cookies)
    assert (again.cache_status, regime_of(again)) == ("HIT", "opt-in")
