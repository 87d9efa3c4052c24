"""What a consent record's ``hash`` and an anchor's ``mac`` are computed over.

A keyed record's hash is an HMAC-SHA256, under the proof key its ``key_id`` names, over its
fields, its link and the key id (see ``chain`` and ``proof_keys``); a record made before proof
keys has a plain SHA-256 over its fields and link. The same functions sign a new record,
check the chain's head before an append, and verify the whole chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from .records import EXPORT_FIELDS, ConsentRecord, utc_text

GENESIS_HASH = "0" * 64


class MacKey(Protocol):
    """A proof key as sealing sees it (``proof_keys.ProofKey``)."""

    @property
    def key_id(self) -> str: ...

    def mac(self, message: bytes) -> str: ...


# The versions of a record's signed form, each adding fields to the one before: a field added
# later is signed only when not None, so a record made before it keeps the form it was signed
# in, and one made since cannot lose the field unnoticed (its signature covers it).
#   1: every field of EXPORT_FIELDS before ``language`` (``key_id`` only on keyed records)
#   2: + ``language``, the notice's language
#   3: + ``regime``, the consent regime of where the reader was, and ``services``, the
#      services granted inside the categories
SIGNED_WHEN_SET = ("language", "regime", "services")
SIGNED_FIELDS = tuple(
    name for name in EXPORT_FIELDS if name not in ("id", "hash", *SIGNED_WHEN_SET)
)
UNKEYED_FIELDS = tuple(name for name in SIGNED_FIELDS if name != "key_id")
ANCHOR_SIGNED_FIELDS = (
    "created_at",
    "pruned_before",
    "last_pruned_id",
    "tail_hash",
    "pruned_count",
    "key_id",
)


def seal_record(fields: Mapping[str, Any], key: MacKey | None) -> str:
    """The ``hash`` a record with these fields must carry: the HMAC under ``key``, or, for a
    record made before proof keys (no key), the plain SHA-256 it was stored with."""
    signed = {name: fields[name] for name in (UNKEYED_FIELDS if key is None else SIGNED_FIELDS)}
    signed.update({name: fields[name] for name in SIGNED_WHEN_SET if fields.get(name) is not None})
    if key is None:
        return hashlib.sha256(canonical_json(signed)).hexdigest()
    return key.mac(canonical_json(signed))


def record_hash(record: ConsentRecord, key: MacKey | None) -> str:
    names = (*SIGNED_FIELDS, *SIGNED_WHEN_SET)
    return seal_record({name: getattr(record, name) for name in names}, key)


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """One byte string per record, whichever database and driver it was read through."""
    canonical = {
        **fields,
        "created_at": utc_text(fields["created_at"]),
        "categories": list(fields["categories"]),
        "gpc": bool(fields["gpc"]),
    }
    if fields.get("services") is not None:
        canonical["services"] = list(fields["services"])
    return json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()


def seal_anchor(fields: Mapping[str, Any], key: MacKey) -> str:
    """An anchor's ``mac``, over a form no record's fields can take (one ``anchor`` key)."""
    signed = {name: fields[name] for name in ANCHOR_SIGNED_FIELDS}
    signed["created_at"] = utc_text(signed["created_at"])
    signed["pruned_before"] = utc_text(signed["pruned_before"])
    encoded = json.dumps({"anchor": signed}, sort_keys=True, separators=(",", ":")).encode()
    return key.mac(encoded)
