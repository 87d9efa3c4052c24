"""``flask articles import`` refuses what it cannot take, naming the file and the field: a file
over the size limit, a date out of range, a field nested hundreds deep, text that is not UTF-8.
Import is all or nothing, so a refused file leaves every other file of the run unimported."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from globalupdates.articles.models import Article
from globalupdates.extensions import db
from tests.support.articles import article_markdown

DEEP_LIST = "[" * 600 + "x" + "]" * 600


def import_folder(runner, folder):
    return runner.invoke(args=["articles", "import", str(folder)])


def imported_slugs(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(db.select(Article.slug).order_by(Article.slug)))


@pytest.fixture
def folder(app, tmp_path):
    """A folder holding one good article beside whatever the test writes, and the slugs stored
    before the import."""
    path = tmp_path / "articles"
    path.mkdir()
    (path / "a-good.md").write_text(article_markdown("a-good"), encoding="utf-8")
    return path


def assert_refused(app, runner, folder, *named: str) -> None:
    before = imported_slugs(app)
    result = import_folder(runner, folder)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    for name in named:
        assert name in result.output, result.output
    assert imported_slugs(app) == before


def test_a_file_over_the_size_limit_is_refused_by_name(app, runner, folder):
    body = "word " * 210_000
    (folder / "b-huge.md").write_text(article_markdown("b-huge", body=body), encoding="utf-8")
    assert_refused(app, runner, folder, "b-huge.md", "1,000,000 bytes", "ARTICLE_MAX_BYTES")


def test_the_size_limit_is_a_setting(app_factory, tmp_path):
    app = app_factory(ARTICLE_MAX_BYTES=2_000_000)
    (tmp_path / "big.md").write_text(
        article_markdown("big", body="word " * 210_000), encoding="utf-8"
    )
    result = app.test_cli_runner().invoke(args=["articles", "import", str(tmp_path / "big.md")])
    assert result.exit_code == 0, result.output
    assert imported_slugs(app) == ["big"]


@pytest.mark.parametrize(
    "published",
    ['"9999-12-31T23:59:59-01:00"', "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"],
)
def test_a_date_out_of_range_names_its_field(app, runner, folder, published):
    (folder / "b-date.md").write_text(
        article_markdown("b-date", published=published), encoding="utf-8"
    )
    assert_refused(app, runner, folder, "b-date.md", "published")


def test_an_update_date_out_of_range_names_its_field(app, runner, folder):
    (folder / "b-date.md").write_text(
        article_markdown("b-date", updated='"9999-12-31T23:59:59-01:00"'), encoding="utf-8"
    )
    assert_refused(app, runner, folder, "b-date.md", "updated")


@pytest.mark.parametrize("field", ["headline", "tags", "section", "author", "slug"])
def test_a_list_nested_600_deep_names_its_field(app, runner, folder, field):
    text = article_markdown("b-deep").replace(
        f"\n{field}: ", f"\n{field}: {DEEP_LIST}\nold_{field}: "
    )
    (folder / "b-deep.md").write_text(text, encoding="utf-8")
    assert_refused(app, runner, folder, "b-deep.md", field)


def test_text_that_is_not_utf8_names_its_line(app, runner, folder):
    text = article_markdown("b-latin", body="Caf\xe9 au lait.").encode("latin-1")
    (folder / "b-latin.md").write_bytes(text)
    line = text[: text.index(b"\xe9")].count(b"\n") + 1
    assert_refused(app, runner, folder, "b-latin.md", f"line {line} is not UTF-8")


front_matter_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.datetimes().map(lambda moment: moment.isoformat()),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(
        [
            "headline",
            "standfirst",
            "author",
            "published",
            "updated",
            "section",
            "tags",
            "lang",
            "image",
            "slug",
        ]
    ),
    value=front_matter_values,
)
def test_any_front_matter_value_imports_or_is_refused_by_name(
    app, runner, tmp_path_factory, field, value
):
    folder = tmp_path_factory.mktemp("hostile")
    fields = {
        "slug": "hostile",
        "headline": "H",
        "standfirst": "S",
        "author": "A",
        "published": "2026-01-01",
    }
    fields[field] = value
    text = "---\n" + json.dumps(fields) + "\n---\n\nA body.\n"
    (folder / "hostile.md").write_text(text, encoding="utf-8")
    result = import_folder(runner, folder)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert "hostile.md" in result.output and result.exception.__class__ is SystemExit
