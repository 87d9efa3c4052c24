"""Checkpoints: the chain's head written down outside the database, and read back.

``flask consent checkpoint`` prints the newest record's id and hash (``take_checkpoint``);
the operator keeps the line elsewhere. ``flask consent verify --checkpoint FILE`` reads the
lines back (``read_checkpoints``, which names any line that is not one) and checks that
the chain still extends each (``verification.check_checkpoint``): records removed from
the end of the chain leave no other trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from ...extensions import db
from .records import utc_text
from .seals import GENESIS_HASH
from .stored_rows import (
    ANCHORS,
    RECORDS,
    Malformed,
    readable,
    shown,
    text_value,
    tolerant_text,
    whole_number,
)

# A record id or count beyond a 64-bit integer is no id any database here can hold.
LARGEST_ID = 2**63 - 1


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, for an operator to keep outside the database.

    ``record_id`` is the newest record's id; on an empty chain, the last id an anchor
    pruned (or 0 before any record), and ``hash`` the hash the next record will link to.
    """

    record_id: int
    hash: str
    count: int
    taken_at: str

    def as_json(self) -> str:
        return json.dumps(
            {
                "record_id": self.record_id,
                "hash": self.hash,
                "count": self.count,
                "taken_at": self.taken_at,
            },
            separators=(",", ":"),
        )


HEAD_WITH_COUNT = (
    select(
        RECORDS.c.id, RECORDS.c.hash, select(func.count()).select_from(RECORDS).scalar_subquery()
    )
    .order_by(RECORDS.c.id.desc())
    .limit(1)
)
NEWEST_ANCHOR_TAIL = (
    select(ANCHORS.c.id, ANCHORS.c.last_pruned_id, ANCHORS.c.tail_hash)
    .order_by(ANCHORS.c.id.desc())
    .limit(1)
)


def take_checkpoint() -> Checkpoint:
    """Read the head and the number of records in one statement, so the two agree.

    ``UnreadableRecord`` names the head when its hash is not text (SQLite keeps anything)."""
    taken_at = utc_text(datetime.now(UTC))
    with db.engine.connect() as connection, tolerant_text(connection):
        head = connection.execute(HEAD_WITH_COUNT).first()
        if head is not None:
            return Checkpoint(
                head[0], readable(head[1], f"record {head[0]}: hash"), head[2], taken_at
            )
        anchor = connection.execute(NEWEST_ANCHOR_TAIL).first()
    if anchor is not None:
        tail_hash = readable(anchor[2], f"anchor {anchor[0]}: tail_hash")
        return Checkpoint(anchor[1], tail_hash, 0, taken_at)
    return Checkpoint(0, GENESIS_HASH, 0, taken_at)


@dataclass(frozen=True)
class KeptCheckpoint:
    """A checkpoint read back from the operator's file, named by where it was found."""

    label: str
    checkpoint: Checkpoint


class CheckpointFileError(ValueError):
    pass


def read_checkpoints(lines: Iterable[bytes], source: str) -> list[KeptCheckpoint]:
    """Every checkpoint in a file read as bytes; a line that is not one is named."""
    kept = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                checkpoint = parse_checkpoint(line)
            except CheckpointFileError as error:
                raise CheckpointFileError(f"line {number}: {error}") from None
            kept.append(KeptCheckpoint(f"{source} line {number}", checkpoint))
    if not kept:
        raise CheckpointFileError(f"{source} holds no checkpoint")
    return kept


CHECKPOINT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "record_id": whole_number,
    "hash": text_value,
    "count": whole_number,
    "taken_at": text_value,
}


def parse_checkpoint(line: bytes) -> Checkpoint:
    """One line written by ``flask consent checkpoint``; ``CheckpointFileError`` names what
    is wrong with any other."""
    written_by = "not a checkpoint written by `flask consent checkpoint`"
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointFileError(f"{written_by}: it is not UTF-8 text") from None
    except RecursionError:
        raise CheckpointFileError(f"{written_by}: its JSON is nested too deeply") from None
    except ValueError:
        raise CheckpointFileError(f"{written_by}: {shown(line.strip())}") from None
    if not isinstance(data, dict):
        raise CheckpointFileError(f"{written_by}: it is not a JSON object ({shown(line.strip())})")
    fields = {}
    for name, parse in CHECKPOINT_FIELDS.items():
        try:
            fields[name] = parse(data[name])
        except KeyError:
            raise CheckpointFileError(f"{written_by}: it has no {name}") from None
        except Malformed as error:
            raise CheckpointFileError(
                f"{written_by}: {name} {error} ({shown(data[name])})"
            ) from None
    for name in ("record_id", "count"):
        if not 0 <= fields[name] <= LARGEST_ID:
            raise CheckpointFileError(
                f"{written_by}: {name} {fields[name]} is out of range (0 to {LARGEST_ID})"
            )
    return Checkpoint(**fields)
