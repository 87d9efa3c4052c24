"""Proof keys: where the key that signs the consent chain comes from, how it is kept and
rotated, and what verification makes of records signed by a key it does not know or by
none at all."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from flask_migrate import upgrade

from globalupdates import create_app
from globalupdates.consent.proof.chain import append_to_chain
from globalupdates.consent.proof.next_signer import key_file_problem
from globalupdates.consent.proof.proof_keys import (
    CACHE_NAME,
    ProofKey,
    key_file,
    load_keyring,
    read_key_file,
)
from globalupdates.consent.proof.records import ChainAnchor, ConsentRecord
from globalupdates.consent.proof.seals import GENESIS_HASH, record_hash
from globalupdates.extensions import db
from tests.support.apps import app_config
from tests.support.consent import choose, records, stored_choice

OTHER_SECRET = "s" * 40


def forge(app, day: int = 1) -> None:
    with app.app_context():
        append_to_chain(
            consent_id=str(uuid.uuid4()),
            created_at=datetime(2026, 1, day, tzinfo=UTC),
            action="save",
            categories=["necessary"],
            revision=1,
            notice_hash="a" * 64,
            gpc=False,
        )


def sql(app, statement, **params) -> None:
    with app.app_context():
        db.session.execute(db.text(statement), params)
        db.session.commit()


def verify(app, *args: str):
    return app.test_cli_runner().invoke(args=["consent", "verify", *args])


def problems(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("PROBLEM: ")]


def key_ids(app) -> list[str | None]:
    return [record.key_id for record in records(app)]


def test_the_key_file_is_made_on_first_need_and_owner_only(app):
    path = key_file(app)
    assert verify(app).exit_code == 0
    assert not path.exists(), "verifying must not write a key"
    forge(app)
    assert path.stat().st_mode & 0o777 == 0o600
    [key] = read_key_file(path)
    assert key.key_id == "k1" and len(key.secret) == 64
    assert key_ids(app) == ["k1"]


def test_a_worker_reads_the_key_file_again_only_when_it_changed(app):
    forge(app, 1)
    kept = app.extensions[CACHE_NAME]
    forge(app, 2)
    assert app.extensions[CACHE_NAME] is kept, "an unchanged file is not read again"
    path = key_file(app)
    text = path.read_text()
    path.unlink()
    path.write_text(text)
    forge(app, 3)
    assert app.extensions[CACHE_NAME] is not kept
    assert key_ids(app) == ["k1", "k1", "k1"]
    assert verify(app).exit_code == 0


def broken_key_file(app, how: str) -> None:
    path = key_file(app)
    if how == "removed":
        path.unlink()
    elif how == "emptied":
        path.write_text("# nothing but a comment\n\n")
    elif how == "changed":
        path.write_text(f"k1 {OTHER_SECRET}\n")
    else:
        path.write_text("not a key file\n")


@pytest.mark.health_follows_at_once
@pytest.mark.parametrize("how", ["removed", "emptied", "changed", "garbled"])
def test_a_broken_key_file_after_keyed_records_is_an_outage_not_a_new_key(app, how, caplog):
    forge(app, 1)
    path = key_file(app)
    kept = path.read_bytes()
    broken_key_file(app, how)
    broken = path.read_bytes() if path.exists() else None

    reader = app.test_client()
    answer = choose(reader, "accept_all")
    assert answer.status_code == 503
    assert "unavailable" in answer.get_data(as_text=True)
    assert stored_choice(reader) is None
    edition = choose(app.test_client(), "reject_all", language="de", headers={"Sec-GPC": "1"})
    assert edition.status_code == 503
    assert key_ids(app) == ["k1"], "nothing is signed while the key file is broken"
    assert (path.read_bytes() if path.exists() else None) == broken, "no key is made"
    with app.app_context():
        problem = key_file_problem(app)
    assert problem is not None and str(path) in problem
    health = app.test_client().get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["failed"] == "proof_keys"
    assert "proof keys cannot sign" in caplog.text and str(path) in caplog.text

    refused = app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    assert refused.exit_code == 1 and "cannot rotate the proof key" in refused.output

    path.write_bytes(kept)
    assert app.test_client().get("/healthz").status_code == 200
    assert choose(reader, "accept_all").status_code == 303
    with app.app_context():
        assert key_file_problem(app) is None
    assert key_ids(app) == ["k1", "k1"]
    assert verify(app).exit_code == 0


def test_a_missing_key_file_is_made_while_no_record_is_keyed(app):
    with app.app_context():
        assert key_file_problem(app) is None
    assert not key_file(app).exists(), "the health check makes no key"
    assert choose(app.test_client(), "accept_all").status_code == 303
    assert key_ids(app) == ["k1"]


def test_a_key_file_lacking_the_key_of_the_newest_record_is_an_outage(app):
    forge(app, 1)
    rotated = app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    forge(app, 2)
    path = key_file(app)
    path.write_text(
        "".join(line for line in path.read_text().splitlines(True) if "k2 " not in line)
    )
    assert choose(app.test_client(), "accept_all").status_code == 503
    with app.app_context():
        assert "has no key k2" in (key_file_problem(app) or "")
    refused = app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    assert refused.exit_code == 1, "a new line would give k2's id, or k3, a secret of its own"
    assert key_ids(app) == ["k1", "k2"]


def test_a_retired_key_never_signs_again(app, app_factory):
    forge(app, 1)
    [k1] = read_key_file(key_file(app))
    app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    forge(app, 2)
    behind = app_factory(CONSENT_PROOF_KEY=f"k1:{k1.secret}")
    assert choose(behind.test_client(), "accept_all").status_code == 503
    with behind.app_context():
        assert "a retired key never signs again" in (key_file_problem(behind) or "")
    assert key_ids(app) == ["k1", "k2"]


def test_a_rotation_reaches_a_running_worker_at_its_next_choice(app, app_factory):
    forge(app, 1)
    other_worker = app_factory()
    forge(other_worker, 2)
    app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    forge(other_worker, 3)
    forge(app, 4)
    assert key_ids(app) == ["k1", "k1", "k2", "k2"]
    assert verify(app).exit_code == 0


def test_workers_racing_to_make_the_key_file_all_sign_with_one_key(app):
    start = threading.Barrier(8)
    signers = []

    def first_need() -> None:
        start.wait()
        signers.append(load_keyring(app, create=True).signer)

    threads = [threading.Thread(target=first_need) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(signers) == 8 and len(set(signers)) == 1
    assert [path.name for path in key_file(app).parent.iterdir()] == [key_file(app).name]


def test_records_signed_by_an_old_key_still_verify_after_rotating(app):
    forge(app, 1)
    forge(app, 2)
    rotated = app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "New signing key k2" in rotated.output
    forge(app, 3)
    assert key_ids(app) == ["k1", "k1", "k2"]
    assert [key.key_id for key in read_key_file(key_file(app))] == ["k1", "k2"]
    assert key_file(app).stat().st_mode & 0o777 == 0o600
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "Proof keys: k1, k2\n" in result.output


def test_a_record_claiming_an_unknown_key_fails(app):
    for day in (1, 2, 3):
        forge(app, day)
    sql(app, "UPDATE consent_record SET key_id = 'k9' WHERE id = 2")
    result = verify(app)
    assert result.exit_code == 1
    assert problems(result) == [
        "PROBLEM: record 2: key_id 'k9' is not a known proof key (neither in the key file "
        "nor CONSENT_PROOF_KEY)"
    ]


def test_records_whose_key_line_was_deleted_no_longer_verify(app):
    forge(app, 1)
    app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    forge(app, 2)
    path = key_file(app)
    path.write_text(
        "".join(line for line in path.read_text().splitlines(True) if "k1 " not in line)
    )
    result = verify(app)
    assert result.exit_code == 1
    assert problems(result) == [
        "PROBLEM: record 1: key_id 'k1' is not a known proof key (neither in the key file "
        "nor CONSENT_PROOF_KEY)"
    ]


def test_verify_away_from_the_sites_instance_folder_says_where_it_looked(
    app, app_factory, tmp_path, monkeypatch
):
    forge(app)
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "elsewhere"))
    elsewhere = app_factory()
    result = verify(elsewhere)
    assert result.exit_code == 1
    assert "Proof keys: none found\n" in result.output
    assert f"No proof key was found in {tmp_path / 'elsewhere' / 'consent_proof_keys'}" in (
        result.output
    )


def test_the_configured_key_signs_and_the_file_keys_still_verify(app, app_factory):
    forge(app, 1)
    configured = app_factory(CONSENT_PROOF_KEY=f"k2:{OTHER_SECRET}")
    forge(configured, 2)
    assert key_ids(app) == ["k1", "k2"]
    assert [key.key_id for key in read_key_file(key_file(app))] == ["k1"]
    assert verify(configured).exit_code == 0
    without = verify(app)
    assert without.exit_code == 1
    assert "PROBLEM: record 2: key_id 'k2' is not a known proof key" in without.output


def test_a_configured_key_alone_writes_no_key_file(app_factory):
    app = app_factory(CONSENT_PROOF_KEY=f"site-2026:{OTHER_SECRET}")
    forge(app)
    assert key_ids(app) == ["site-2026"]
    assert not key_file(app).exists()
    assert verify(app).exit_code == 0


@pytest.mark.parametrize(
    ("configured", "complaint"),
    [
        (OTHER_SECRET, "CONSENT_PROOF_KEY must be written key_id:secret"),
        ("k2:short", "CONSENT_PROOF_KEY: the secret of key k2 must be at least 32 characters"),
        (f"two words:{OTHER_SECRET}", "CONSENT_PROOF_KEY: key id 'two words' must be 1 to 32"),
    ],
)
def test_a_malformed_configured_key_is_a_clear_error(app_factory, configured, complaint):
    result = verify(app_factory(CONSENT_PROOF_KEY=configured))
    assert result.exit_code == 1
    assert f"Error: cannot verify the chain: {complaint}" in result.output
    assert "Traceback" not in result.output


def test_one_key_id_for_two_secrets_is_refused(app, app_factory):
    forge(app)
    result = verify(app_factory(CONSENT_PROOF_KEY=f"k1:{OTHER_SECRET}"))
    assert result.exit_code == 1
    assert "key id k1 names two different secrets" in result.output


def test_rotate_key_is_refused_while_a_configured_key_signs(app_factory):
    app = app_factory(CONSENT_PROOF_KEY=f"k5:{OTHER_SECRET}")
    result = app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    assert result.exit_code == 1
    assert "CONSENT_PROOF_KEY is set, and it signs" in result.output
    assert not key_file(app).exists()


@pytest.fixture
def upgraded_site(tmp_path, monkeypatch):
    """A site whose records and one prune were made before proof keys, then upgraded.

    SQLite only, by construction: the upgrade runs on a database file of its own, from the
    first migration, with the old records stored in between.
    """
    monkeypatch.setenv("FLASK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config(f"sqlite:///{tmp_path / 'upgraded.sqlite3'}", tmp_path))
    with app.app_context():
        upgrade(directory=app.config["MIGRATIONS_DIR"], revision="39813c2f7430")
        for day in (1, 2, 3):
            db.session.execute(
                db.text(
                    "INSERT INTO consent_record (consent_id, created_at, action, categories, "
                    "revision, notice_hash, gpc) VALUES (:id, :at, 'save', :c, 1, :n, 0)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "at": datetime(2025, 1, day),
                    "c": '["necessary"]',
                    "n": "a" * 64,
                },
            )
        db.session.commit()
        upgrade(directory=app.config["MIGRATIONS_DIR"], revision="5b1e0c7d9a21")
        db.session.execute(
            db.text(
                "INSERT INTO consent_chain_anchor (created_at, pruned_before, last_pruned_id, "
                "tail_hash, pruned_count) SELECT :at, :at, 1, hash, 1 FROM consent_record "
                "WHERE id = 1"
            ),
            {"at": datetime(2025, 1, 2)},
        )
        db.session.execute(db.text("DELETE FROM consent_record WHERE id = 1"))
        db.session.commit()
        upgrade(directory=app.config["MIGRATIONS_DIR"])
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_records_from_before_proof_keys_stay_an_unprotected_start(upgraded_site):
    app = upgraded_site
    refused = verify(app)
    assert refused.exit_code == 1
    assert "2 record(s) carry no proof key" in refused.output
    assert "--allow-unkeyed" in refused.output
    before = verify(app, "--allow-unkeyed")
    assert before.exit_code == 0, before.output
    assert (
        "Start: anchor 1 (it pruned 1 record(s) made before 2025-01-02T00:00:00Z, up to "
        "record 1; it is not signed by a proof key)"
    ) in before.output
    assert (
        "Not protected by a key: 2 record(s) made before proof keys; no keyed record "
        "follows them yet."
    ) in before.output
    forge(app, 1)
    after = verify(app, "--allow-unkeyed")
    assert after.exit_code == 0, after.output
    assert key_ids(app) == [None, None, "k1"]
    assert (
        "Not protected by a key: 2 record(s) made before proof keys; only the link from "
        "keyed record 4 vouches for them."
    ) in after.output


def test_an_old_record_altered_after_the_upgrade_fails(upgraded_site):
    forge(upgraded_site, 1)
    sql(upgraded_site, "UPDATE consent_record SET action = 'accept_all' WHERE id = 2")
    result = verify(upgraded_site, "--allow-unkeyed")
    assert problems(result) == [
        "PROBLEM: record 2 was altered: its hash is not the SHA-256 of its fields "
        "(it has no proof key)"
    ]


def test_an_unkeyed_record_after_a_keyed_one_fails(upgraded_site):
    forge(upgraded_site, 1)
    forge(upgraded_site, 2)
    sql(upgraded_site, "UPDATE consent_record SET key_id = NULL WHERE id = 5")
    result = verify(upgraded_site, "--allow-unkeyed")
    assert result.exit_code == 1
    assert problems(result)[0] == (
        "PROBLEM: record 5: key_id is missing, yet record 4 before it is keyed; only records "
        "made before proof keys may lack one"
    )


def reseal(app, key: ProofKey | None, ids: set[int], prev_hash: str | None = None) -> None:
    """Re-sign the records ``ids``, the newest run of the chain, with ``key`` (or, when it
    is None, as records made before proof keys), the first of them linked to ``prev_hash``
    when given: what someone holding that key, or no key at all, could write."""
    with app.app_context():
        run = db.session.scalars(
            db.select(ConsentRecord).where(ConsentRecord.id.in_(ids)).order_by(ConsentRecord.id)
        ).all()
        for record in run:
            record.key_id = key.key_id if key else None
            record.prev_hash = prev_hash or record.prev_hash
            record.hash = prev_hash = record_hash(record, key)
        db.session.commit()


def test_a_record_signed_by_a_retired_key_fails_even_with_a_checkpoint(app, tmp_path):
    forge(app, 1)
    [k1] = read_key_file(key_file(app))
    app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    forge(app, 2)
    forge(app, 3)
    reseal(app, k1, {3})
    assert key_ids(app) == ["k1", "k2", "k1"]
    kept = tmp_path / "checkpoints.jsonl"
    app.test_cli_runner().invoke(args=["consent", "checkpoint", "--output", str(kept)])
    for args in ((), ("--checkpoint", str(kept))):
        result = verify(app, *args)
        assert result.exit_code == 1, result.output
        assert problems(result) == [
            "PROBLEM: record 3: signed by key k1, retired since record 2 was signed by the "
            "newer key k2"
        ]


def test_a_retired_key_after_an_anchor_signed_by_a_newer_one_fails(app):
    forge(app, 1)
    forge(app, 2)
    [k1] = read_key_file(key_file(app))
    app.test_cli_runner().invoke(args=["consent", "rotate-key"])
    pruned = app.test_cli_runner().invoke(
        args=["consent", "prune", "--before", "2026-01-02", "--yes"]
    )
    assert "Pruned 1 record(s)" in pruned.output
    reseal(app, k1, {2})
    result = verify(app)
    assert problems(result) == [
        "PROBLEM: record 2: signed by key k1, retired since anchor 1 was signed by the newer key k2"
    ]


UNKEYED_TAIL_AFTER_KEYS = (
    "PROBLEM: the chain ends with record 3, which carries no proof key, yet the site has "
    "proof keys (k1) and no record signed by one follows: unkeyed records may only lead "
    "the chain"
)


def test_a_chain_rewritten_entirely_without_keys_fails_even_with_allow_unkeyed(app):
    for day in (1, 2, 3):
        forge(app, day)
    reseal(app, None, {1, 2, 3}, prev_hash=GENESIS_HASH)
    assert key_ids(app) == [None, None, None]
    result = verify(app, "--allow-unkeyed")
    assert result.exit_code == 1
    assert problems(result) == [UNKEYED_TAIL_AFTER_KEYS]


def test_a_chain_rewritten_without_keys_after_a_signed_anchor_fails(app):
    for day in (1, 2, 3):
        forge(app, day)
    app.test_cli_runner().invoke(args=["consent", "prune", "--before", "2026-01-02", "--yes"])
    with app.app_context():
        tail = db.session.scalar(db.select(ChainAnchor.tail_hash))
    reseal(app, None, {2, 3}, prev_hash=tail)
    result = verify(app, "--allow-unkeyed")
    assert result.exit_code == 1
    assert problems(result) == [UNKEYED_TAIL_AFTER_KEYS]


def test_the_allow_unkeyed_flag_says_it_admits_only_a_leading_run(app):
    help_text = " ".join(verify(app, "--help").output.split())
    assert "only as the chain's leading run" in help_text


def test_a_prune_part_way_through_records_from_before_proof_keys_still_verifies(upgraded_site):
    app = upgraded_site
    forge(app, 1)
    pruned = app.test_cli_runner().invoke(
        args=["consent", "prune", "--before", "2025-01-02T12:00", "--yes"]
    )
    assert "Pruned 1 record(s)" in pruned.output, pruned.output
    assert key_ids(app) == [None, "k1"]
    result = verify(app, "--allow-unkeyed")
    assert result.exit_code == 0, result.output
    assert "only the link from keyed record 4 vouches for them" in result.output
