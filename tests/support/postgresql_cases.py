"""The PostgreSQL cases of the suite: counted, never lost without a word.

A test is a PostgreSQL case when it carries the ``postgresql`` mark: the PostgreSQL variant
of every database-parametrised test gets it from ``databases.backend_names()``, and a test
that only makes sense on PostgreSQL is marked ``@pytest.mark.postgresql`` by hand.

Without ``TEST_DATABASE_URL`` those cases are deselected, and the run ends with a line that
says how many did not run. With ``--require-postgresql`` (CI passes it) any PostgreSQL case
that does not run (for want of the URL, because it skipped, or because the run stopped before
it) fails the run.
"""

from __future__ import annotations

import pytest

from tests.support.databases import TEST_DATABASE_URL, configured_postgres_url

MARK = "postgresql"
REQUIRE_OPTION = "--require-postgresql"


class PostgresqlCases:
    """What became of this session's PostgreSQL cases; registered as a plugin of its own."""

    def __init__(self, required: bool) -> None:
        self.required = required
        self.selected: set[str] = set()
        self.without_server = 0
        self.skipped: set[str] = set()
        self.ran: set[str] = set()

    @property
    def not_reached(self) -> int:
        """Selected but never run nor skipped: the run stopped early, or only collected."""
        return len(self.selected - self.ran - self.skipped)

    @property
    def not_run(self) -> int:
        return self.without_server + len(self.skipped) + self.not_reached

    def summary(self) -> str | None:
        """The closing line, or None when the selection held no PostgreSQL case."""
        total = len(self.selected) + self.without_server
        if total == 0:
            return None
        if self.not_run == 0:
            return f"PostgreSQL: all {total} cases ran."
        reasons = []
        if self.without_server:
            reasons.append(f"{TEST_DATABASE_URL} is not set")
        if self.skipped:
            reasons.append(f"{len(self.skipped)} skipped")
        if self.not_reached:
            reasons.append(f"{self.not_reached} not reached")
        verdict = (
            "a failure under " + REQUIRE_OPTION
            if self.required
            else f"CI runs them and fails if any does not ({REQUIRE_OPTION})"
        )
        return (
            f"PostgreSQL: {self.not_run} of {total} cases did not run "
            f"({'; '.join(reasons)}): {verdict}."
        )

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]):
        """After ``-m`` and ``-k`` have chosen: keep the PostgreSQL cases when a server is
        named, else deselect them and count them."""
        postgresql = [item for item in items if item.get_closest_marker(MARK)]
        if configured_postgres_url():
            self.selected = {item.nodeid for item in postgresql}
            return
        if postgresql:
            self.without_server = len(postgresql)
            config.hook.pytest_deselected(items=postgresql)
            items[:] = [item for item in items if not item.get_closest_marker(MARK)]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A case ran when its test body was called (an xfail too) or its set-up failed; one
        that skipped did not run."""
        if report.nodeid not in self.selected or report.when == "teardown":
            return
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skipped.add(report.nodeid)
        elif report.when == "call" or report.failed:
            self.ran.add(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.required and self.not_run and session.exitstatus in (0, 5):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        line = self.summary()
        if line is not None:
            failing = bool(self.required and self.not_run)
            terminalreporter.write_line(line, red=failing, yellow=not failing, bold=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        REQUIRE_OPTION,
        action="store_true",
        help="fail the run when any PostgreSQL case does not run (CI passes it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}: a PostgreSQL case; needs {TEST_DATABASE_URL}, and fails the run under "
        f"{REQUIRE_OPTION} when it does not run",
    )
    cases = PostgresqlCases(required=config.getoption(REQUIRE_OPTION))
    config.pluginmanager.register(cases, "postgresql-cases")
