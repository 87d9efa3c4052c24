"""Which text a reader saw: each record keeps the language of the page the choice was made on
and the hash of the notice in that language, signed in the chain, and every operator's
command reports them."""

from __future__ import annotations

import csv
import io
import json

import pytest

from globalupdates.consent.proof.next_signer import signing_key
from globalupdates.extensions import db
from tests.support.consent import (
    GPC,
    append_old_record,
    choose,
    in_edition,
    records,
    signed_form,
    store_choice,
)


def notice_hash(app, language: str) -> str:
    return app.extensions["consent"].registry.notice_hash_for(language)


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["consent", *args])


def sql(app, statement: str, **params) -> None:
    with app.app_context():
        db.session.execute(db.text(statement), params)
        db.session.commit()


def choose_in(app, language: str, action: str, categories: tuple[str, ...] = (), client=None):
    """A choice posted from the preferences of the edition in ``language``; returns the
    reader's client."""
    client = client or app.test_client()
    response = choose(client, action, categories, language=language)
    assert response.status_code == 303
    return client


def old_record(app, consent_id: str | None = None) -> None:
    """A record as every record was made before languages: none, and a signed form without it."""
    append_old_record(app, "accept_all", 2, consent_id=consent_id)


def test_a_choice_records_the_page_language_and_the_hash_of_the_notice_in_it(app):
    choose_in(app, "fr", "save", ("analytics",))
    choose_in(app, "de", "reject_all")
    choose_in(app, "en", "accept_all")
    made = records(app)
    assert [record.language for record in made] == ["fr", "de", "en"]
    assert [record.notice_hash for record in made] == [
        notice_hash(app, "fr"),
        notice_hash(app, "de"),
        notice_hash(app, "en"),
    ]
    assert len({record.notice_hash for record in made}) == 3


def test_a_gpc_opt_out_records_the_language_of_the_page_it_was_applied_on(app, client):
    store_choice(client, ("functional", "advertisement"))
    client.get(in_edition("/", "de"), headers=GPC)
    [record] = records(app)
    assert record.action == "gpc_opt_out"
    assert (record.language, record.notice_hash) == ("de", notice_hash(app, "de"))


def test_the_language_is_signed_so_changing_it_breaks_verification(app):
    choose_in(app, "fr", "accept_all")
    choose_in(app, "fr", "reject_all")
    assert cli(app, "verify").exit_code == 0
    sql(app, "UPDATE consent_record SET language = 'de' WHERE id = 1")
    result = cli(app, "verify")
    assert result.exit_code == 1
    assert "PROBLEM: record 1 was altered: its hash is not the HMAC" in result.output
    sql(app, "UPDATE consent_record SET language = NULL WHERE id = 1")
    result = cli(app, "verify")
    assert result.exit_code == 1, "a language taken away makes it look like an old record"
    assert "record 1 was altered" in result.output
    assert "PROBLEM: record 2" not in result.output


def test_a_record_made_before_languages_verifies_as_before(app):
    old_record(app)
    choose_in(app, "de", "accept_all")
    [old, new] = records(app)
    assert old.language is None
    with app.app_context():
        key = signing_key()
    # The old signed form, field for field: no language in it at all.
    old_form = signed_form(old)
    assert b'"language"' not in old_form
    assert old.hash == key.mac(old_form)
    new_form = signed_form(new, language="de", regime="opt-in", services=new.services)
    assert new.hash == key.mac(new_form)
    result = cli(app, "verify")
    assert result.exit_code == 0, result.output
    assert "Notice languages: de 1, not recorded 1\n" in result.output
    sql(app, "UPDATE consent_record SET language = 'en' WHERE id = 1")
    assert "record 1 was altered" in cli(app, "verify").output


def test_export_gives_the_language_in_json_and_csv(app):
    old_record(app)
    choose_in(app, "fr", "accept_all")
    lines = [json.loads(line) for line in cli(app, "export").output.splitlines()]
    assert [line["language"] for line in lines] == [None, "fr"]
    assert lines[1]["notice_hash"] == notice_hash(app, "fr")
    assert list(lines[1])[-3:] == ["language", "regime", "services"], "added after the others"
    rows = list(csv.DictReader(io.StringIO(cli(app, "export", "--format", "csv").output)))
    assert [row["language"] for row in rows] == ["", "fr"]
    assert rows[1]["notice_hash"] == notice_hash(app, "fr")


def test_show_gives_each_record_its_language(app):
    client = choose_in(app, "de", "accept_all")
    choose_in(app, "fr", "reject_all", client=client)
    [first, second] = records(app)
    result = cli(app, "show", first.consent_id)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(f"notice {notice_hash(app, 'de')[:12]}, language de, regime opt-in)")
    assert lines[1].endswith(f"notice {notice_hash(app, 'fr')[:12]}, language fr, regime opt-in)")
    old_record(app, consent_id=first.consent_id)
    assert (
        cli(app, "show", first.consent_id)
        .output.splitlines()[2]
        .endswith("language not recorded, regime not recorded)")
    )


def test_verify_counts_the_records_per_language(app):
    for language in ("fr", "fr", "en", "de", "fr"):
        choose_in(app, language, "accept_all")
    result = cli(app, "verify")
    assert result.exit_code == 0
    assert "Notice languages: fr 3, de 1, en 1\n" in result.output


def test_stats_and_the_report_count_the_choices_per_language(app):
    old_record(app)
    for language in ("fr", "fr", "de"):
        choose_in(app, language, "accept_all")
    document = json.loads(cli(app, "stats", "--format", "json").output)
    assert document["languages"] == ["en", "de", "fr", "not_recorded"]
    total = document["groups"][0]
    assert total["choices"] == 4
    counts = {key: value for key, value in total.items() if key.startswith("choices_in_")}
    assert counts == {
        "choices_in_en": 0,
        "choices_in_de": 1,
        "choices_in_fr": 2,
        "choices_in_not_recorded": 1,
    }
    rows = list(csv.DictReader(io.StringIO(cli(app, "stats", "--format", "csv").output)))
    assert rows[0]["choices_in_fr"] == "2"
    table = cli(app, "stats").output
    assert (
        "Choices by notice language: en 0 (0.0%), de 1 (25.0%), fr 2 (50.0%), "
        "not recorded 1 (25.0%)\n"
    ) in table
    report = cli(app, "report").output
    assert "fr 2 (50.0%)" in report


@pytest.mark.parametrize("language", ["de", "fr"])
def test_the_readers_history_names_the_language_of_each_record(app, language):
    client = choose_in(app, language, "accept_all")
    answer = client.get("/consent/history", headers={"Accept": "application/json"}).get_json()
    [entry] = answer["records"]
    assert (entry["language"], entry["notice_hash"]) == (language, notice_hash(app, language))
    page = client.get(in_edition("/consent/history", language)).get_data(as_text=True)
    assert f'class="notice-language">{language}</td>' in page
