"""Without TEST_DATABASE_URL the PostgreSQL cases do not run, and the run says how many;
with --require-postgresql (CI) any PostgreSQL case that does not run fails the run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from globalupdates.config import PROJECT_ROOT

A_SUITE = """
import pytest

from tests.support.databases import backend_names


@pytest.fixture(params=backend_names())
def backend(request):
    return request.param


def test_on_each_database(backend):
    assert backend in ("sqlite", "postgresql")


@pytest.mark.postgresql
def test_only_on_postgresql():
    pass


def test_anywhere():
    pass
"""
A_POSTGRESQL_CASE_THAT_SKIPS = """

@pytest.mark.postgresql
def test_that_skips():
    pytest.skip("no server today")
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "tests.support.postgresql_cases", "-p", "no:cacheprovider", *args
    )


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    pytester.makepyfile(test_suite=A_SUITE)
    return pytester


def test_without_a_server_the_run_says_how_many_postgresql_cases_did_not_run(suite):
    result = run(suite)
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(
        ["PostgreSQL: 2 of 2 cases did not run (TEST_DATABASE_URL is not set): CI runs them*"]
    )
    assert result.ret == 0


def test_without_a_server_a_required_postgresql_run_fails(suite):
    result = run(suite, "--require-postgresql")
    result.stdout.fnmatch_lines(["PostgreSQL: 2 of 2 cases did not run (*): a failure under*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_with_a_server_every_postgresql_case_runs(suite, monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    result = run(suite, "--require-postgresql", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_on_each_database?postgresql? PASSED*"])
    result.stdout.fnmatch_lines(["PostgreSQL: all 2 cases ran."])
    assert result.ret == 0


def test_a_postgresql_case_that_skips_fails_a_required_run(suite, monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    suite.makepyfile(test_suite=A_SUITE + A_POSTGRESQL_CASE_THAT_SKIPS)
    result = run(suite, "--require-postgresql")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(["PostgreSQL: 1 of 3 cases did not run (1 skipped): a failure*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_cases_left_out_with_m_are_not_counted_as_missing(suite):
    suite.makepyfile(
        test_slow="""
import pytest

@pytest.mark.postgresql
@pytest.mark.slow
def test_slow_on_postgresql():
    pass
"""
    )
    result = run(suite, "-m", "not slow", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.stdout.fnmatch_lines(["PostgreSQL: 2 of 2 cases did not run*"])


def test_postgresql_cases_a_stopped_run_never_reached_are_counted(suite, monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    suite.makepyfile(test_suite="import pytest\n\ndef test_first():\n    assert False\n" + A_SUITE)
    result = run(suite, "--require-postgresql", "-x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["PostgreSQL: 2 of 2 cases did not run (2 not reached): *"])


def postgresql_skips(path: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """``skipif``/``skip`` calls in a test file whose condition or reason speaks of PostgreSQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(root).as_posix()}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func).rsplit(".", 1)[-1] in ("skipif", "skip", "importorskip")
        and re.search(r"postgres|TEST_DATABASE_URL", ast.unparse(node), re.IGNORECASE)
    ]


def test_no_test_skips_for_want_of_postgresql_instead_of_carrying_the_mark():
    found = [
        place
        for path in sorted(PROJECT_ROOT.joinpath("tests").rglob("*.py"))
        if path.name != "test_postgresql_cases.py"
        for place in postgresql_skips(path)
    ]
    assert found == []


def test_a_skip_for_want_of_postgresql_is_caught(tmp_path):
    path = tmp_path / "test_probe.py"
    path.write_text(
        "import pytest\n\n"
        "needs_postgres = pytest.mark.skipif(\n"
        '    not configured_postgres_url(), reason="needs TEST_DATABASE_URL"\n)\n'
        '@pytest.mark.skipif(True, reason="flaky")\ndef test_x():\n    pass\n',
        encoding="utf-8",
    )
    assert postgresql_skips(path, tmp_path) == ["test_probe.py:3"]
