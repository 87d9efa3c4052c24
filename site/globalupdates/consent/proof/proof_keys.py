"""The proof keys that sign the consent chain, kept out of the database they protect.

Anyone who can write the database can recompute a plain hash over a record they changed;
an HMAC needs a key they cannot read. Keys come from two places, both outside the database:

``CONSENT_PROOF_KEY`` (``FLASK_CONSENT_PROOF_KEY``), written ``key_id:secret``
    When set, this key signs every new record and anchor. Keys it replaced stay in the file.

The instance folder's ``consent_proof_keys`` file, one ``key_id secret`` line per key
    Oldest first; blank lines and lines starting with ``#`` are ignored. Every key in it
    verifies; the last one signs unless ``CONSENT_PROOF_KEY`` is set. Without either, and
    while no record or anchor is keyed, the file is made on first need holding one new key,
    readable by its owner only (0600), the way the site keeps its ``secret_key``.
    ``flask consent rotate-key`` adds a new line.

A key id is 1 to 32 letters, digits, ``.``, ``_`` or ``-``, and is stored with each record
it signed; a secret is at least 32 characters without spaces. Never remove a line: the
records its key signed could no longer be verified.

A worker keeps the keys it read and looks at the file's status (one ``stat``) before each
batch of appends, reading it again only when it changed: so a rotation takes effect at every
worker's next append, and a key file removed, emptied or changed while the site runs is seen
at once. Which key may sign is then checked against the chain itself
(``next_signer.checked_signer``): once keyed records exist, a key file that is missing, holds
no key, or no longer holds the secret that signed the newest record (or anchor) is an outage,
never a new key under an old id. ``next_signer.key_file_problem`` says so for ``/healthz``.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

KEY_FILE_NAME = "consent_proof_keys"
CACHE_NAME = "consent_proof_keys"
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")
MIN_SECRET_LENGTH = 32
KEY_FILE_HEADER = (
    "# Proof keys for the consent chain: one 'key_id secret' per line, oldest first.\n"
    "# The last line signs new records; every line verifies. Never delete a line.\n"
)


class ProofKeyError(RuntimeError):
    """A key source that cannot be used as it is: the message says what to fix."""


@dataclass(frozen=True)
class ProofKey:
    key_id: str
    secret: str

    def mac(self, message: bytes) -> str:
        return hmac.digest(self.secret.encode(), message, "sha256").hex()


@dataclass(frozen=True)
class Keyring:
    """Every key that verifies, by id, and the one that signs (None when there is none yet)."""

    keys: dict[str, ProofKey]
    signer: ProofKey | None

    def get(self, key_id: str) -> ProofKey | None:
        return self.keys.get(key_id)

    def rank(self, key_id: str) -> int:
        """A known key's age among the others: 0 for the oldest. A key that is not in the key
        file (``CONSENT_PROOF_KEY`` alone) is the newest."""
        return list(self.keys).index(key_id)


@dataclass(frozen=True)
class KeptKeys:
    """The keys a process read, and the key file's status when it read them."""

    keyring: Keyring
    stamp: tuple[int, ...] | None


def key_file(app: Flask) -> Path:
    """The instance folder's key file (its path worked out once per app: every batch of
    appends looks at it)."""
    path: Path | None = app.extensions.get(KEY_FILE_NAME + "_path")
    if path is None:
        path = app.extensions[KEY_FILE_NAME + "_path"] = Path(app.instance_path) / KEY_FILE_NAME
    return path


def file_stamp(path: Path) -> tuple[int, ...] | None:
    """What changes whenever the file is replaced, removed or written: None when missing."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def current_keyring(app: Flask) -> Keyring:
    """This process's keys: read again only when the key file changed since they were read
    (``ProofKeyError`` when it can no longer be used)."""
    stamp = file_stamp(key_file(app))
    kept: KeptKeys | None = app.extensions.get(CACHE_NAME)
    if kept is None or kept.stamp != stamp:
        forget_keys(app)
        kept = KeptKeys(load_keyring(app, create=False), stamp)
        app.extensions[CACHE_NAME] = kept
    return kept.keyring


def forget_keys(app: Flask) -> None:
    """Drop this process's kept keys, so the next append reads them again."""
    app.extensions.pop(CACHE_NAME, None)


def load_keyring(app: Flask, *, create: bool) -> Keyring:
    """Read the configured key and the key file afresh.

    With ``create``, a missing key file is made when nothing else could sign; without it
    (verification only reads), a missing file is simply no keys.
    """
    configured = configured_key(app.config.get("CONSENT_PROOF_KEY"))
    path = key_file(app)
    if create and configured is None and not path.exists():
        create_key_file(path)
    file_keys = read_key_file(path)
    if configured is None and path.exists() and not file_keys:
        raise ProofKeyError(f"{path} holds no key: delete it or set FLASK_CONSENT_PROOF_KEY")
    keys = merge_keys(file_keys, configured, path)
    signer = configured or (file_keys[-1] if file_keys else None)
    return Keyring(keys, signer)


def configured_key(value: object) -> ProofKey | None:
    if value is None or value == "":
        return None
    key_id, colon, secret = str(value).partition(":")
    if not colon:
        raise ProofKeyError("CONSENT_PROOF_KEY must be written key_id:secret, e.g. k2:<64 hex>")
    return checked_key(key_id, secret, "CONSENT_PROOF_KEY")


def checked_key(key_id: str, secret: str, where: str) -> ProofKey:
    if not KEY_ID.fullmatch(key_id):
        raise ProofKeyError(
            f"{where}: key id {key_id!r} must be 1 to 32 letters, digits, '.', '_' or '-'"
        )
    if len(secret) < MIN_SECRET_LENGTH or any(char.isspace() for char in secret):
        raise ProofKeyError(
            f"{where}: the secret of key {key_id} must be at least {MIN_SECRET_LENGTH} "
            "characters without spaces"
        )
    return ProofKey(key_id, secret)


def read_key_file(path: Path) -> list[ProofKey]:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise ProofKeyError(f"cannot read the proof keys in {path}: {error}") from None
    return [
        key_from_line(line, f"{path} line {number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def key_from_line(line: str, where: str) -> ProofKey:
    parts = line.split()
    if len(parts) != 2:
        raise ProofKeyError(f"{where}: expected 'key_id secret'")
    return checked_key(parts[0], parts[1], where)


def merge_keys(file_keys: list[ProofKey], configured: ProofKey | None, path: Path) -> dict:
    """One key per id: an id that names two different secrets would make records unverifiable."""
    keys: dict[str, ProofKey] = {}
    for key in [*file_keys, *([configured] if configured else [])]:
        known = keys.setdefault(key.key_id, key)
        if known.secret != key.secret:
            raise ProofKeyError(
                f"key id {key.key_id} names two different secrets (in {path} or "
                "CONSENT_PROOF_KEY): give the new key an id of its own"
            )
    return keys


def new_key(key_id: str) -> ProofKey:
    return ProofKey(key_id, secrets.token_hex(32))


def key_line(key: ProofKey) -> str:
    return f"{key.key_id} {key.secret}\n"


def create_key_file(path: Path) -> None:
    """Write a file with one new key under a temporary name, then link it into place.

    Several workers may need a key at the same moment: the link succeeds for one of them,
    and the others read that one's complete file, never a half-written one. The temporary
    file is made owner-only (0600) from the start.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE_NAME}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(KEY_FILE_HEADER + key_line(new_key("k1")))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def next_key_id(existing: set[str]) -> str:
    """``k<n>``, one past the highest such id in use."""
    numbers = [int(match[1]) for key_id in existing if (match := re.fullmatch(r"k(\d+)", key_id))]
    number = max(numbers, default=0) + 1
    while f"k{number}" in existing:
        number += 1
    return f"k{number}"


def rotate_key(app: Flask, used_key_ids: Iterable[str] = ()) -> ProofKey:
    """Add a new signing key to the key file (made if missing) and return it.

    Its id is one no key in the file and none in ``used_key_ids`` (those the chain's records
    and anchors name) has had. The file is replaced whole, so a worker reading it meanwhile
    sees the old one or the new one, never half a line. Refused while ``CONSENT_PROOF_KEY``
    is set, since that key signs whatever the file says.
    """
    if configured_key(app.config.get("CONSENT_PROOF_KEY")) is not None:
        raise ProofKeyError(
            "CONSENT_PROOF_KEY is set, and it signs: to rotate, add its current value to "
            f"{key_file(app)} as a line 'key_id secret' (so the records it signed still "
            "verify), then set CONSENT_PROOF_KEY to a new key_id:secret"
        )
    path = key_file(app)
    if not path.exists() and not set(used_key_ids):
        create_key_file(path)
        forget_keys(app)
        return read_key_file(path)[-1]
    existing = read_key_file(path)
    key = new_key(next_key_id({key.key_id for key in existing} | set(used_key_ids)))
    text = path.read_text(encoding="ascii") if path.exists() else KEY_FILE_HEADER
    replace_key_file(path, text + ("" if text.endswith("\n") or not text else "\n") + key_line(key))
    forget_keys(app)
    return key


def replace_key_file(path: Path, text: str) -> None:
    """Write ``text`` to an owner-only temporary file beside ``path``, then rename it over."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE_NAME}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
