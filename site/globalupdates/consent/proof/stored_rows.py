"""Reading consent records and anchors exactly as stored, whatever someone made of them.

Rows are read with SQLAlchemy Core and no type processing, and each field is parsed here,
so a field made unreadable by someone with database access is reported with its record
and name instead of ending a command in a traceback. Three things would otherwise fail
inside the driver, before any field could be looked at, and take the rest of the walk with
them: on SQLite, text that is not UTF-8; on PostgreSQL, a timestamp Python cannot hold (year
10000, ``infinity``) and JSON nested deeper than Python's parser goes. So SQLite's text is
decoded here (``tolerant_text``), and PostgreSQL sends timestamps and JSON as text
(``raw``). SQLite hands back text where PostgreSQL hands back typed values; both are
accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Column, Connection, DateTime, Label, Select, Text, cast, select
from sqlalchemy import type_coerce as coerce
from sqlalchemy.types import NullType

from .records import ChainAnchor, ConsentRecord, as_utc

RECORDS = ConsentRecord.__table__
ANCHORS = ChainAnchor.__table__
SHOWN_VALUE = 40


def raw(column: Column, dialect: str) -> Label:
    """The column's value as the driver returns it, with no SQLAlchemy conversion; on
    PostgreSQL, a timestamp or JSON value as its text."""
    if dialect == "postgresql" and isinstance(column.type, DateTime | JSON):
        return coerce(cast(column, Text), NullType()).label(column.name)
    return coerce(column, NullType()).label(column.name)


@cache
def raw_records(dialect: str) -> Select:
    """Every record as stored, oldest first; one statement per dialect, built once, so its
    compiled form is found in SQLAlchemy's cache without working out its key again."""
    return select(*(raw(column, dialect) for column in RECORDS.c)).order_by(RECORDS.c.id)


@cache
def raw_anchors(dialect: str) -> Select:
    return select(*(raw(column, dialect) for column in ANCHORS.c)).order_by(ANCHORS.c.id)


def decoded_or_bytes(value: bytes) -> str | bytes:
    """SQLite's text as ``str``, or its bytes when they are not UTF-8 (``text_value`` then
    names the field)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


@contextmanager
def tolerant_text(connection: Connection) -> Iterator[Connection]:
    """On SQLite, text that is not UTF-8 comes back as bytes instead of failing the fetch of
    its row; the connection's own decoding is restored after."""
    if connection.dialect.name != "sqlite":
        yield connection
        return
    driver_connection: Any = connection.connection.driver_connection
    kept = driver_connection.text_factory
    driver_connection.text_factory = decoded_or_bytes
    try:
        yield connection
    finally:
        driver_connection.text_factory = kept


class Malformed(ValueError):
    """A stored value that is not what its field holds; the message says what it should be."""


def text_value(value: Any) -> str:
    if isinstance(value, bytes):
        raise Malformed("is not UTF-8 text")
    if not isinstance(value, str):
        raise Malformed("is not text")
    return value


def optional_text(value: Any) -> str | None:
    return None if value is None else text_value(value)


def whole_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed("is not a whole number")
    return value


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Malformed("is not true or false")


def moment(value: Any) -> datetime:
    """A date and time that UTC can hold: ``9999-12-31 23:59:59-01:00`` is a valid ISO time,
    yet in UTC it falls in year 10000, past what Python's dates reach."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise Malformed("is not a date and time") from None
    if not isinstance(value, datetime):
        raise Malformed("is not a date and time")
    try:
        return as_utc(value)
    except OverflowError:
        raise Malformed("is a date and time out of range in UTC") from None


def category_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise Malformed("is JSON nested too deeply") from None
        except ValueError:
            raise Malformed("is not JSON") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Malformed("is not a list of category names")
    return value


def optional_service_list(value: Any) -> list[str] | None:
    """A record's services: a list like its categories, or None on a record made before."""
    if value is None or value == "null":
        return None
    try:
        return category_list(value)
    except Malformed:
        raise Malformed("is not a list of service names") from None


RECORD_FIELDS: dict[str, Callable[[Any], Any]] = {
    "id": whole_number,
    "consent_id": text_value,
    "created_at": moment,
    "action": text_value,
    "categories": category_list,
    "revision": whole_number,
    "notice_hash": text_value,
    "gpc": flag,
    "prev_hash": text_value,
    "key_id": optional_text,
    "hash": text_value,
    "language": optional_text,
    "regime": optional_text,
    "services": optional_service_list,
}
ANCHOR_FIELDS: dict[str, Callable[[Any], Any]] = {
    "id": whole_number,
    "created_at": moment,
    "pruned_before": moment,
    "last_pruned_id": whole_number,
    "tail_hash": text_value,
    "pruned_count": whole_number,
    "key_id": optional_text,
    "mac": optional_text,
}


def parse_row(
    row: Mapping[Any, Any], parsers: Mapping[str, Callable[[Any], Any]]
) -> tuple[dict[str, Any], list[str]]:
    """The row's fields parsed, and one message per field that could not be."""
    fields: dict[str, Any] = {}
    problems = []
    for name, parse in parsers.items():
        value = row[name]
        try:
            fields[name] = parse(value)
        except Malformed as error:
            problems.append(f"{name} {error} ({shown(value)})")
    return fields, problems


def shown(value: Any) -> str:
    """A short, printable form of a stored value, however long or deeply nested it is."""
    if isinstance(value, str | bytes):
        text = repr(value[: SHOWN_VALUE + 1])
    else:
        try:
            text = repr(value)
        except RecursionError:
            text = f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 3] + "..."


class UnreadableRecord(ValueError):
    """A record with a field no longer in its column's form; the message names both."""


def readable_records(
    connection: Connection, *conditions: Any, batch_size: int = 500
) -> Iterator[dict[str, Any]]:
    """The records matching ``conditions``, oldest first, each as its parsed fields; at the
    first that cannot be read, ``UnreadableRecord`` naming it and every bad field."""
    query = raw_records(connection.dialect.name).where(*conditions)
    with tolerant_text(connection):
        rows = connection.execution_options(yield_per=batch_size).execute(query)
        try:
            for row in rows.mappings():
                fields, problems = parse_row(row, RECORD_FIELDS)
                if problems:
                    raise UnreadableRecord(f"record {row['id']}: {'; '.join(problems)}")
                yield fields
        finally:
            rows.close()


def readable(value: Any, what: str, unreadable: type[Exception] = UnreadableRecord) -> str:
    """A stored hash or key id as text, or ``unreadable`` naming the field."""
    try:
        return text_value(value)
    except Malformed as error:
        raise unreadable(f"{what} {error} ({shown(value)})") from None
