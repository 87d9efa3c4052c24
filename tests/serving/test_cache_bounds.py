"""Every cache the site keeps is a row of the table in docs/architecture.md, and each row's
bound holds when the cache is filled past it.

The table is read from the docs; the caches are found in the source (every ``cachetools``
cache made and every ``functools`` memo, by what the module imports), so a new memo that is
not in the table fails here, and so does a row naming something that no longer exists.
"""

from __future__ import annotations

import ast
import importlib
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from globalupdates.articles import embeds, search
from globalupdates.articles.embeds import SPLIT_BODIES_CHARACTERS, split_body
from globalupdates.articles.search import STEMS_KEPT, stem_of
from globalupdates.config import PROJECT_ROOT
from globalupdates.consent.proof import next_signer, stored_rows
from globalupdates.consent.web import preferences_form
from globalupdates.consent.web.engine import POLICY_MEMO_BYTES, PolicyMemo
from globalupdates.consent.web.gpc import RECORDED_MEMORY, RecordedRevisions
from globalupdates.editions import endonym
from globalupdates.features.pageviews import STORED_COUNT_PATHS, PageViewBuffer
from globalupdates.httpheaders import DISTINCT_VALUES, forbids_storing, varies_on
from globalupdates.i18n import FORMATTED_DATES_KEPT, formatted
from globalupdates.pagecache import ContentVersion, takes_gzip
from globalupdates.pages import PAGE_MEMO_SIZE, page_exists
from globalupdates.ratelimits import ConfiguredLimit
from tests.support.consent import SAME_ORIGIN

SITE = PROJECT_ROOT / "site" / "globalupdates"
ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"
NGINX_CONF = PROJECT_ROOT / "deploy" / "nginx.conf"
FUNCTOOLS_MEMOS = {"cache", "lru_cache"}

# Each row of the table and the test that fills it past its bound (or, for a cache that is
# not ours to bound, checks the lifetime the site tells it).
BOUND_TESTS = {
    "nginx, first visits": "test_nginx_keeps_to_the_zone_size_the_table_names",
    "nginx, returning readers": "test_nginx_keeps_to_the_zone_size_the_table_names",
    "CDN (optional)": "test_shared_pages.py::"
    "test_a_first_visit_page_is_public_for_shared_caches_and_varies_on_what_changes_it",
    "kept responses": "test_kept_responses.py::"
    "test_a_huge_article_under_many_query_strings_stays_within_the_bounds",
    "page cache": "test_kept_responses.py::"
    "test_a_huge_article_under_many_query_strings_stays_within_the_bounds",
    "content version": "test_the_content_version_is_one_value_read_once_per_interval",
    "policies": "test_the_policies_stay_within_their_bytes",
    "page checks": "test_the_page_checks_stay_within_their_paths",
    "stored page-view counts": "test_the_stored_page_view_counts_stay_within_their_paths",
    "GPC opt-outs recorded": "test_the_recorded_gpc_opt_outs_stay_within_their_number",
    "split article bodies": "test_split_bodies_stay_within_their_characters",
    "search stems": "test_search_stems_stay_within_their_number",
    "formatted dates": "test_formatted_dates_stay_within_their_number",
    "`Accept-Encoding` readings": "test_accept_encoding_readings_stay_within_their_number",
    "response header readings": "test_response_header_readings_stay_within_their_number",
    "conditional-request answers": (
        "test_negotiation.py::test_the_validator_memo_keeps_a_bounded_number_of_answers"
    ),
    "edition names": "test_edition_names_stay_within_their_number",
    "sections": "test_sections_and_stemmers_are_kept_for_the_sites_languages_only",
    "stemmers": "test_sections_and_stemmers_are_kept_for_the_sites_languages_only",
    "health probe": "test_health_probes.py::test_the_probe_runs_at_most_once_per_interval",
    "parsed rate limits": "test_parsed_rate_limits_do_not_grow_with_requests",
    "statements and catalogues built once": "test_memos_built_once_stay_one_per_key",
    "the browser": "test_shared_pages.py::"
    "test_a_page_for_a_reader_with_a_choice_is_private_and_revalidated",
}


def cache_table() -> dict[str, list[str]]:
    """The rows of the table under "## Caches", by the name in their first cell."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("\n## Caches\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if cells[0] != "cache":
            rows[cells[0]] = cells
    return rows


def names_in_the_table() -> set[str]:
    """The dotted names in the "where" cells, e.g. ``pages.PageMemo``."""
    return {
        name
        for cells in cache_table().values()
        for name in re.findall(r"`([a-z0-9_.]+\.[A-Za-z_]+)`", cells[1])
    }


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SITE).with_suffix("").parts)


class CacheFinder(ast.NodeVisitor):
    """Who in a module makes a ``cachetools`` cache or wraps a function in a ``functools``
    memo: the outermost class or function around it, as ``module.Name``."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.cachetools: set[str] = set()
        self.functools: set[str] = set()
        self.owners: list[str] = []
        self.found: set[str] = set()

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        names = {alias.asname or alias.name for alias in node.names}
        if node.module == "cachetools":
            self.cachetools |= names
        elif node.module == "functools":
            self.functools |= names & FUNCTOOLS_MEMOS

    def visit_owner(self, node: ast.ClassDef | ast.FunctionDef) -> None:
        self.owners.append(node.name)
        if len(self.owners) == 1:
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Name) and target.id in self.functools:
                    self.found.add(f"{self.module}.{node.name}")
        self.generic_visit(node)
        self.owners.pop()

    visit_ClassDef = visit_FunctionDef = visit_owner

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in self.cachetools - {"cached"}:
            assert self.owners, f"a cache made at the top of {self.module}: give it an owner"
            self.found.add(f"{self.module}.{self.owners[0]}")
        self.generic_visit(node)


def caches_in_the_source() -> set[str]:
    found: set[str] = set()
    for path in sorted(SITE.rglob("*.py")):
        finder = CacheFinder(module_name(path))
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        found |= finder.found
    return found


def resolves(dotted: str) -> bool:
    module, _, name = dotted.rpartition(".")
    return hasattr(importlib.import_module(f"globalupdates.{module}"), name)


def test_the_table_names_every_cache_in_the_source():
    found = caches_in_the_source()
    assert {"keptresponses.KeptResponses", "articles.search.stem_of"} <= found, found
    assert found - names_in_the_table() == set()


def test_every_cache_the_table_names_exists():
    names = names_in_the_table()
    assert len(names) > 15, names
    assert [name for name in sorted(names) if not resolves(name)] == []


def test_every_row_of_the_table_has_a_test_of_its_bound():
    assert sorted(cache_table()) == sorted(BOUND_TESTS)
    here = Path(__file__).parent
    for named in BOUND_TESTS.values():
        file, _, test = named.rpartition("::")
        source = (here / (file or Path(__file__).name)).read_text(encoding="utf-8")
        assert f"\ndef {test}(" in source, named


def test_nginx_keeps_to_the_zone_size_the_table_names():
    """nginx's cache manager holds the zone to ``max_size``; the table names that size, and
    every location that caches uses that one zone."""
    conf = NGINX_CONF.read_text(encoding="utf-8")
    zone = re.search(r"proxy_cache_path \S+ .*keys_zone=(\w+):\S+ max_size=(\w+)", conf)
    assert zone is not None
    rows = cache_table()
    assert f"`max_size={zone[2]}`" in rows["nginx, first visits"][5]
    assert rows["nginx, returning readers"][5] == "the same zone"
    used = set(re.findall(r"^\s*proxy_cache (\w+);", conf, re.MULTILINE))
    assert used == {zone[1]}


def test_the_content_version_is_one_value_read_once_per_interval(app):
    reads: list[float] = []

    def read() -> object:
        reads.append(time.monotonic())
        return len(reads)

    kept = ContentVersion(app, read, interval=0.2)
    assert {kept.current() for _ in range(500)} == {1}
    time.sleep(0.25)
    assert kept.current() == 2 and len(reads) == 2
    every_time = ContentVersion(app, read, interval=0)
    assert [every_time.current() for _ in range(3)] == [3, 4, 5]


def test_the_policies_stay_within_their_bytes():
    memo = PolicyMemo()
    policy = "script-src 'self' " + "x" * 2000
    for number in range(3 * POLICY_MEMO_BYTES // len(policy)):
        assert memo.get_or_build(("host", number), lambda: policy) == policy
    assert memo._policies.currsize <= POLICY_MEMO_BYTES
    assert 0 < len(memo) < POLICY_MEMO_BYTES // len(policy) + 1


def test_the_page_checks_stay_within_their_paths(app):
    with app.test_request_context():
        for number in range(PAGE_MEMO_SIZE + 200):
            assert not page_exists(f"/articles/never-published-{number}")
        memo = app.extensions["page_memo"]
        assert len(memo.known) == PAGE_MEMO_SIZE
        assert page_exists("/articles/harrowmere-tidal-lagoon-switches-on")
        assert len(memo.known) == PAGE_MEMO_SIZE


def test_the_stored_page_view_counts_stay_within_their_paths(app):
    with app.app_context():
        buffer = PageViewBuffer(app)
        for number in range(STORED_COUNT_PATHS + 200):
            assert buffer.stored_count(f"/articles/story-{number}") == 0
        assert len(buffer.stored_counts) == STORED_COUNT_PATHS


def test_the_recorded_gpc_opt_outs_stay_within_their_number():
    recorded = RecordedRevisions()
    made_at = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(RECORDED_MEMORY + 100):
        recorded.remember((f"consent-{number}", made_at))
    assert len(recorded.recorded) == RECORDED_MEMORY
    assert ("consent-0", made_at) not in recorded, "the oldest goes first"
    assert (f"consent-{RECORDED_MEMORY + 99}", made_at) in recorded


@pytest.fixture
def emptied_memos():
    """The process-wide memos a test fills, emptied before and after it."""
    memos = [split_body.cache, stem_of.cache, formatted.cache]
    for memo in memos:
        memo.clear()
    takes_gzip.cache_clear()
    endonym.cache_clear()
    yield
    for memo in memos:
        memo.clear()
    takes_gzip.cache_clear()
    endonym.cache_clear()


def test_split_bodies_stay_within_their_characters(emptied_memos):
    marker = '<gu-embed data-provider="vidmoor" data-ref="clip">A clip</gu-embed>'
    for number in range(40):
        body = f"<p>{number}</p>" + "<p>tide</p>" * 20_000 + marker
        parts = split_body(body)
        assert isinstance(parts[-1], embeds.EmbedRef) and parts[0].startswith(f"<p>{number}")
    assert 0 < split_body.cache.currsize <= SPLIT_BODIES_CHARACTERS
    huge = "<p>lagoon</p>" * (SPLIT_BODIES_CHARACTERS // 10)
    assert split_body(huge) == (huge,), "a body over the bound is split, just not kept"
    assert split_body.cache.currsize <= SPLIT_BODIES_CHARACTERS


def test_search_stems_stay_within_their_number(emptied_memos):
    for number in range(STEMS_KEPT + 500):
        stem_of(f"harbours{number}", "en")
    assert len(stem_of.cache) == STEMS_KEPT
    assert stem_of("harbours", "en") == "harbour"


def test_formatted_dates_stay_within_their_number(emptied_memos):
    first = date(2000, 1, 1)
    for number in range(FORMATTED_DATES_KEPT + 200):
        formatted(first + timedelta(days=number), "en", "UTC", with_time=False)
    assert len(formatted.cache) == FORMATTED_DATES_KEPT
    assert formatted(first, "en", "UTC", with_time=False) == "1 January 2000"


def test_accept_encoding_readings_stay_within_their_number(emptied_memos):
    for number in range(300):
        assert takes_gzip(f"gzip, x-coding-{number}")
    assert takes_gzip.cache_info().currsize == takes_gzip.cache_info().maxsize == 256


def test_response_header_readings_stay_within_their_number():
    forbids_storing.cache_clear()
    varies_on.cache_clear()
    for number in range(DISTINCT_VALUES + 50):
        assert not forbids_storing(f"private, max-age={number}")
        assert varies_on(f"Cookie, X-Header-{number}", ("Cookie",))
    for memo in (forbids_storing, varies_on):
        assert memo.cache_info().currsize == memo.cache_info().maxsize == DISTINCT_VALUES


def test_edition_names_stay_within_their_number(app, emptied_memos):
    languages = ["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da"]
    languages += ["fi", "cs", "hu", "ro", "el", "bg", "hr", "sk", "sl", "et"]
    names = {language: endonym(language) for language in languages}
    assert names["de"] == "Deutsch" and names["fr"] == "Français"
    assert endonym.cache_info().currsize == endonym.cache_info().maxsize == 16
    assert len(app.config["LANGUAGES"]) < 16, "the site's languages all fit"


def test_sections_and_stemmers_are_kept_for_the_sites_languages_only(app, client):
    languages = set(app.config["LANGUAGES"])
    for prefix in ("", "/de", "/fr", "/xx", "/en-gb"):
        client.get(f"{prefix}/sections/energy")
        client.get(f"{prefix}/sections/no-such-section")
        client.get(f"{prefix}/search?q=harbours")
    sections = app.extensions["articles"].sections
    assert set(sections.sections) == set(sections.fetched_at) == languages
    assert set(search._stemmers.by_language) <= languages


def test_parsed_rate_limits_do_not_grow_with_requests(app):
    import gc

    def parsed_texts() -> list[int]:
        limits = [item for item in gc.get_objects() if isinstance(item, ConfiguredLimit)]
        assert limits, "no configured limit found"
        return [len(limit.parsed) for limit in limits]

    client = app.test_client()
    client.post("/consent", data={"action": "reject_all"}, headers=SAME_ORIGIN)
    before = parsed_texts()
    for number in range(30):
        client.post(f"/consent?n={number}", data={"action": "accept_all"}, headers=SAME_ORIGIN)
    assert parsed_texts() == before


def test_memos_built_once_stay_one_per_key(app, client):
    for _ in range(3):
        for dialect in ("sqlite", "postgresql"):
            stored_rows.raw_records(dialect), stored_rows.raw_anchors(dialect)
            next_signer.newest_record(dialect), next_signer.newest_anchor(dialect)
    for memo in (stored_rows.raw_records, stored_rows.raw_anchors):
        assert memo.cache_info().currsize <= 2
    for memo in (next_signer.newest_record, next_signer.newest_anchor):
        assert memo.cache_info().currsize <= 2
    for prefix in ("", "/de", "/fr", "/xx"):
        client.get(f"{prefix}/consent")
        client.post(f"{prefix}/consent", data={"action": "x" * 300}, headers=SAME_ORIGIN)
    assert preferences_form.wtforms_messages.cache_info().currsize <= len(app.config["LANGUAGES"])
