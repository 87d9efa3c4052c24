"""How readers choose, counted from the proof of consent for the operator's ``consent stats``.

Every figure is counted by the database in one grouped pass over the records (by registry
revision, and by period when one is asked for), so a million records cost one scan and
Python only ever holds one row per group.

How a record counts, by its ``action``:

- ``accept_all`` and ``reject_all`` are the two buttons.
- ``save`` is a custom choice made on the preferences page, and so is ``withdrawal``: a save
  or a Reject All that took back a category the reader had granted before. The record keeps
  what the choice did, not which button made it, so a Reject All that withdrew something is
  counted as custom. Withdrawals are also counted on their own.
- ``gpc_opt_out`` is written when a Global Privacy Control signal revises a stored choice.
  The reader did not choose anything then, so it is not a choice: it is counted on its own
  and left out of every share and opt-in rate.

Shares and opt-in rates are of choices. A category is opted in when the choice's categories
name it; the categories asked about are the optional ones of the registry in use now, so a
category an older revision did not offer shows a low rate there. A service is opted in when
the choice's services name it, or, on a record made before services could be chosen (no
services), when its categories name the service's category, since such a choice granted every
service of its categories. A choice is "under GPC"
when the browser sent the signal as it was made. Days, weeks (from Monday) and months are
UTC, like the records. Each group also counts its choices per notice language: the language
of the page the choice was made on (``not_recorded`` for records made before that was kept).
Records are also grouped by the consent regime of where the reader was (``opt-in``,
``opt-out``; ``not_recorded`` for records made before regions, all of them under opt-in), so
an operator sees how readers choose where the categories run until refused and where they
wait for consent.

The cookie audit's records (their consent ids marked in ``consent_audit_reader``) are
no reader's choices and are left out of every figure. ``stats_formats`` writes the figures out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    String,
    Text,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    true,
)

from ...extensions import db
from ..model.record_actions import ACCEPT_ALL, GPC_OPT_OUT, REJECT_ALL, WITHDRAWAL
from ..proof.chain import AUDIT_READERS, RECORDS
from ..proof.records import as_utc

PERIODS = ("day", "week", "month")
UNREADABLE_PERIOD = "unreadable date"
# The times whose day Python can hold: a stored time outside them has none.
PYTHON_DATES = (datetime.min, datetime.max)
NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class Tally:
    """The counts of one group of records; every share is worked out from them."""

    choices: int = 0
    accept_all: int = 0
    reject_all: int = 0
    custom: int = 0
    withdrawals: int = 0
    gpc: int = 0
    gpc_opt_outs: int = 0
    opt_ins: tuple[int, ...] = ()
    languages: tuple[tuple[str, int], ...] = ()  # choices per notice language, by language

    @classmethod
    def empty(cls, categories: int) -> Tally:
        return cls(opt_ins=(0,) * categories)

    def __add__(self, other: Tally) -> Tally:
        languages = dict(self.languages)
        for language, count in other.languages:
            languages[language] = languages.get(language, 0) + count
        return Tally(
            **{name: getattr(self, name) + getattr(other, name) for name in COUNTED},
            opt_ins=tuple(a + b for a, b in zip(self.opt_ins, other.opt_ins, strict=True)),
            languages=tuple(sorted(languages.items())),
        )

    def choices_in(self, language: str) -> int:
        return dict(self.languages).get(language, 0)

    def share(self, count: int) -> float | None:
        """``count`` as a fraction of the choices; None when there was no choice to divide by."""
        return count / self.choices if self.choices else None


COUNTED = tuple(f.name for f in fields(Tally) if f.name not in ("opt_ins", "languages"))


@dataclass(frozen=True)
class Group:
    """One line of the stats: every record (``all``), one revision, or one period."""

    kind: str
    key: str
    tally: Tally


@dataclass(frozen=True)
class ConsentStats:
    since: datetime | None
    until: datetime | None
    by: str | None
    categories: tuple[str, ...]
    groups: list[Group]
    languages: tuple[str, ...] = ()  # the notice languages counted, each group in this order
    services: tuple[str, ...] = ()  # counted after the categories in each tally's opt_ins

    @property
    def total(self) -> Tally:
        return self.groups[0].tally

    @property
    def is_empty(self) -> bool:
        return self.total.choices == 0 and self.total.gpc_opt_outs == 0

    def of_kind(self, kind: str) -> list[Group]:
        return [group for group in self.groups if group.kind == kind]


def count_where(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    """COUNT of the rows that meet every condition: the same SQL on SQLite and PostgreSQL."""
    condition = conditions[0] if len(conditions) == 1 else db.and_(*conditions)
    return func.count(case((condition, 1)))


def grants(key: str) -> ColumnElement[bool]:
    """Whether a record's categories name ``key``.

    The categories are a JSON list of identifiers, so the quoted key appears in the column's
    text exactly when the list holds it, however the JSON was spaced. A LIKE on that text is
    portable and measured about twice as fast on SQLite as ``json_each`` (bench/stats_bench.py).
    """
    return cast(RECORDS.c.categories, Text).contains(f'"{key}"', autoescape=True)


def grants_service(service: str, category: str) -> ColumnElement[bool]:
    """Whether a record's services name ``service``; a record made before services could be
    chosen (no services) granted every service of the categories it names."""
    named = cast(RECORDS.c.services, Text).contains(f'"{service}"', autoescape=True)
    unrecorded = db.or_(RECORDS.c.services.is_(None), cast(RECORDS.c.services, Text) == "null")
    return db.or_(named, db.and_(unrecorded, grants(category)))


def tally_columns(
    categories: Sequence[str], services: Sequence[tuple[str, str]] = ()
) -> list[ColumnElement[int]]:
    action = RECORDS.c.action
    choice = action != GPC_OPT_OUT
    return [
        count_where(choice),
        count_where(action == ACCEPT_ALL),
        count_where(action == REJECT_ALL),
        count_where(choice, action.not_in((ACCEPT_ALL, REJECT_ALL))),
        count_where(action == WITHDRAWAL),
        count_where(choice, RECORDS.c.gpc == true()),
        count_where(action == GPC_OPT_OUT),
        *(count_where(choice, grants(key)) for key in categories),
        *(count_where(choice, grants_service(key, category)) for key, category in services),
    ]


def utc_day(dialect: str) -> ColumnElement[Any]:
    """The record's UTC day: ``YYYY-MM-DD`` text on SQLite, a date on PostgreSQL.

    Weeks and months are made from days in Python (``period_of``): there are only as many
    days as the records span, and grouping by week in SQL cost twice as much as by day on
    SQLite (``date`` with 'weekday 0' and '-6 days'). On PostgreSQL a cast to date cost
    less than formatting each day as text (``to_char``). A time no Python date can hold
    (``infinity``, year 10000, stored by hand) has no day, like SQLite's unreadable text:
    it is counted in the unreadable period, and ``consent verify`` names its record.
    """
    moment = RECORDS.c.created_at
    if dialect == "sqlite":
        return func.date(moment, type_=String)
    if dialect == "postgresql":
        return case((moment.between(*PYTHON_DATES), cast(moment, Date)), else_=null())
    raise ValueError(f"consent stats do not know the {dialect} database")


def period_of(day: date | str | None, by: str) -> str:
    """The first day of the day, week (from Monday) or month that holds ``day``."""
    if day is None:
        return UNREADABLE_PERIOD
    start = day if isinstance(day, date) else date.fromisoformat(day)
    if by == "week":
        start -= timedelta(days=start.weekday())
    elif by == "month":
        start = start.replace(day=1)
    return start.isoformat()


def naive_utc(moment: datetime) -> datetime:
    return as_utc(moment).replace(tzinfo=None)


def stats_query(
    categories: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    by: str | None,
    services: Sequence[tuple[str, str]] = (),
) -> Any:
    day = (utc_day(db.engine.dialect.name) if by else literal_column("NULL", String)).label("day")
    language, regime = RECORDS.c.language, RECORDS.c.regime
    query = select(
        RECORDS.c.revision, language, regime, day, *tally_columns(categories, services)
    ).where(RECORDS.c.consent_id.not_in(select(AUDIT_READERS.c.consent_id)))
    if since is not None:
        query = query.where(RECORDS.c.created_at >= naive_utc(since))
    if until is not None:
        query = query.where(RECORDS.c.created_at < naive_utc(until))
    return query.group_by(RECORDS.c.revision, language, regime, *([day] if by else []))


def tally_of(counts: Sequence[int], language: str | None = None) -> Tally:
    """A tally from one result row's counts, in the order ``tally_columns`` selects them, made
    in ``language`` (None: not recorded)."""
    named = dict(zip(COUNTED, counts, strict=False))
    choices = named.get("choices", 0)
    languages = ((language or NOT_RECORDED, choices),) if choices else ()
    return Tally(**named, opt_ins=tuple(counts[len(COUNTED) :]), languages=languages)


def consent_stats(
    categories: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
    languages: Sequence[str] = (),
    services: Sequence[tuple[str, str]] = (),
) -> ConsentStats:
    """Count the records made in ``[since, until)``: in all, per revision, and per period.

    The database returns one row per revision, notice language and regime (and per day,
    when ``by`` is given); Python adds those rows up, so what it holds grows with the days
    the records span, never with the records. Choices are counted per language in ``languages`` (the
    registry's), then in any other language found, then those with none recorded.
    ``services`` are (service, its category) pairs, counted after the categories.
    """
    if by is not None and by not in PERIODS:
        raise ValueError(f"--by takes one of {', '.join(PERIODS)}, not {by!r}")
    empty = Tally.empty(len(categories) + len(services))
    total = empty
    revisions: dict[int, Tally] = {}
    regimes: dict[str, Tally] = {}
    periods: dict[str, Tally] = {}
    with db.engine.connect() as connection:
        query = stats_query(categories, since, until, by, services)
        for revision, language, regime, day, *counts in connection.execute(query):
            tally = tally_of(counts, language)
            total += tally
            revisions[revision] = revisions.get(revision, empty) + tally
            regime_key = regime or NOT_RECORDED
            regimes[regime_key] = regimes.get(regime_key, empty) + tally
            if by is not None:
                key = period_of(day, by)
                periods[key] = periods.get(key, empty) + tally
    groups = [Group("all", "all", total)]
    groups += [Group("revision", str(key), revisions[key]) for key in sorted(revisions)]
    groups += [Group("regime", key, regimes[key]) for key in sorted(regimes)]
    groups += [Group(by or "", key, periods[key]) for key in sorted(periods)]
    found = [language for language, _ in total.languages]
    others = sorted(language for language in found if language not in (*languages, NOT_RECORDED))
    counted = (*languages, *others, *([NOT_RECORDED] if NOT_RECORDED in found else []))
    service_keys = tuple(key for key, _ in services)
    return ConsentStats(since, until, by, tuple(categories), groups, counted, service_keys)


def period_keys(stats: ConsentStats) -> list[str]:
    """Every period from the first with records to the last, including those with none, so a
    chart over time shows the quiet days as zero instead of leaving them out."""
    present = [group.key for group in stats.of_kind(stats.by or "")]
    readable = [key for key in present if key != UNREADABLE_PERIOD]
    if not readable or stats.by is None:
        return present
    step = next_period(stats.by)
    first, last = date.fromisoformat(readable[0]), date.fromisoformat(readable[-1])
    keys = []
    while first <= last:
        keys.append(first.isoformat())
        first = step(first)
    return keys + [key for key in present if key == UNREADABLE_PERIOD]


def next_period(by: str) -> Callable[[date], date]:
    if by == "day":
        return lambda day: day + timedelta(days=1)
    if by == "week":
        return lambda day: day + timedelta(days=7)
    return lambda day: (day.replace(day=28) + timedelta(days=4)).replace(day=1)
