"""The reader's language and time zone, and the dates and durations shown in that language.

Every text a reader sees goes through Flask-Babel; the catalogues live in ``translations/``
beside this module. ``reader_locale`` is the one place that picks the language: the edition the
URL names (``editions``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.lists import format_list
from cachetools import LRUCache, cached
from flask import Flask, current_app
from flask_babel import get_locale, get_timezone, gettext, ngettext

from .editions import current_edition
from .extensions import babel

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

# The house style for a date in each edition: day, month name, year, in that language's own
# order. Babel's "long" format already reads this way in German and French; its English one
# is American ("November 24, 2026"), so English names its pattern.
DATE_PATTERNS = {"en": "d MMMM y"}
TIME_PATTERN = "HH:mm"
FORMATTED_DATES_KEPT = 4096


def reader_locale() -> str:
    """The language a page is rendered in: its edition's (see ``editions``)."""
    return current_edition()


def reader_timezone() -> str:
    """The time zone every date is shown in (``TIMEZONE``), stated beside each time."""
    return str(current_app.config["TIMEZONE"])


def reader_date(moment: date | datetime) -> str:
    """A day as readers of the current language write it, e.g. "24 November 2026"."""
    return formatted(moment, str(get_locale()), str(get_timezone()), with_time=False)


def reader_date_time(moment: datetime) -> str:
    """A day and a time with its zone, e.g. "24 November 2026, 14:05 UTC"."""
    return formatted(moment, str(get_locale()), str(get_timezone()), with_time=True)


@cached(LRUCache(maxsize=FORMATTED_DATES_KEPT), lock=threading.Lock())
def formatted(moment: date | datetime, language: str, zone: str, with_time: bool) -> str:
    """Kept per moment, language and zone (``FORMATTED_DATES_KEPT`` per worker, least
    recently used out first): a page shows the same few dates on every render (its own, its
    related stories'), and Babel's formatting costs tens of microseconds."""
    if isinstance(moment, datetime):
        moment = as_utc(moment).astimezone(ZoneInfo(zone))
    day = format_date(moment, DATE_PATTERNS.get(language, "long"), locale=language)
    if not with_time or not isinstance(moment, datetime):
        return day
    return gettext(
        "%(date)s, %(time)s %(zone)s",
        date=day,
        time=format_time(moment, TIME_PATTERN, locale=language),
        zone=zone_name(moment),
    )


def as_utc(moment: datetime) -> datetime:
    """Stored times are UTC, with or without their zone attached."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def zone_name(moment: datetime) -> str:
    """The zone as its offset from UTC ("UTC", "UTC+1", "UTC+5:30"): the same in every
    language, where CLDR's names vary ("TU" in French, "+0100" in English)."""
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return "UTC"
    sign = "+" if offset > timedelta(0) else "-"
    hours, minutes = divmod(abs(int(offset.total_seconds())) // 60, 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def day_count(days: int) -> str:
    """A number of days, in the plural form the language wants ("1 day", "182 Tage")."""
    return ngettext("%(num)d day", "%(num)d days", days)


def word_list(words: Iterable[str]) -> str:
    """Words joined as the page's language lists them ("A, B and C", "A, B und C")."""
    return format_list(list(words), locale=get_locale())


def page_language() -> str:
    """The language of the page being rendered, for ``<html lang>``."""
    return str(get_locale())


ScriptTexts = Callable[[], dict[str, str]]


def declare_script_texts(app: Flask, texts: ScriptTexts) -> None:
    """Texts a script shows (a button's label, a status message), in the page's language.

    Scripts take no strings of their own: every page carries the texts of all scripts as one
    JSON block (``script_texts``), read with ``JSON.parse`` by the scripts that run."""
    app.extensions.setdefault("script_texts", []).append(texts)


def script_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    for provider in current_app.extensions.get("script_texts", []):
        texts.update(provider())
    return texts


def init_app(app: Flask) -> None:
    if app.config["BABEL_DEFAULT_LOCALE"] not in app.config["LANGUAGES"]:
        raise ValueError(
            f"BABEL_DEFAULT_LOCALE {app.config['BABEL_DEFAULT_LOCALE']!r} is not one of "
            f"LANGUAGES {tuple(app.config['LANGUAGES'])}"
        )
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    babel.init_app(app, locale_selector=reader_locale, timezone_selector=reader_timezone)
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(
        reader_date=reader_date,
        reader_date_time=reader_date_time,
        day_count=day_count,
        word_list=word_list,
        page_language=page_language,
        script_texts=script_texts,
    )
