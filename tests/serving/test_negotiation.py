"""Content negotiation and conditional requests as Werkzeug reads them, in the page cache in
Flask and in the kept responses in front of it: ``Accept-Encoding`` with qualities and
wildcards, and ``If-None-Match`` with ``*``, weak validators and lists."""

from __future__ import annotations

import gzip

import pytest
from werkzeug.http import is_resource_modified

from globalupdates.articles.importer import import_paths
from globalupdates.httpheaders import (
    DISTINCT_VALIDATORS,
    forbids_storing,
    not_modified,
    validator_matches,
    varies_on,
)
from globalupdates.keptresponses import is_keepable
from globalupdates.pagecache import takes_gzip
from tests.support.apps import CONTENT_DIR
from tests.support.pages import ARTICLE

ENCODINGS = [
    ("gzip", True),
    ("gzip;q=0.5", True),
    ("br;q=0, gzip", True),
    ("gzip, deflate, br, zstd", True),
    ("GZIP;Q=0.1", True),
    ("x-gzip", True),
    ("*", True),
    ("br, *;q=0.2", True),
    ("gzip;q=0", False),
    ("gzip;q=0, *", False),
    ("*;q=1, gzip;q=0", False),
    ("br, *;q=0", False),
    ("identity", False),
    ("br", False),
    ("x-gzip;q=0, *", False),
    ("x-gzip;q=0, gzip", True),
    ("", False),
]


@pytest.fixture
def kept_app(app_factory):
    """The kept responses answering, as in production (the content checked every 10 s)."""
    app = app_factory(CONTENT_CHECK_SECONDS=10)
    with app.app_context():
        import_paths([CONTENT_DIR])
    return app


@pytest.mark.parametrize("accept_encoding, gzipped", ENCODINGS)
def test_accept_encoding_is_read_with_its_qualities(accept_encoding, gzipped):
    assert takes_gzip(accept_encoding) is gzipped


@pytest.mark.parametrize("layer", ["page cache", "kept responses"])
@pytest.mark.parametrize("accept_encoding, gzipped", ENCODINGS)
def test_a_page_is_gzipped_exactly_when_the_browser_takes_gzip(
    request, client, layer, accept_encoding, gzipped
):
    reader = client if layer == "page cache" else request.getfixturevalue("kept_app").test_client()
    plain = reader.get(ARTICLE).data
    for _ in range(2):  # the second answer comes from the layer's own store
        answer = reader.get(ARTICLE, headers={"Accept-Encoding": accept_encoding})
        assert answer.status_code == 200
        assert (answer.headers.get("Content-Encoding") == "gzip") is gzipped
        assert (gzip.decompress(answer.data) if gzipped else answer.data) == plain


def conditional_answers(reader, etag: str) -> dict[str, int]:
    """The status of a revalidation with each form of ``If-None-Match``."""
    opaque = etag.strip('"')
    sent = {
        "the etag": etag,
        "any": "*",
        "weak": f"W/{etag}",
        "in a list": f'"other", {etag}',
        "in a list without space": f'"other",W/{etag}',
        "another": '"other"',
        "a prefix of it": f'"{opaque[:8]}"',
        "it with more": f'"{opaque}0"',
    }
    return {
        name: reader.get(ARTICLE, headers={"If-None-Match": value}).status_code
        for name, value in sent.items()
    }


@pytest.mark.parametrize("layer", ["page cache", "kept responses"])
def test_if_none_match_takes_any_weak_or_listed_validator_and_nothing_else(request, client, layer):
    """A 304 for ``*``, for the ETag weak or strong (If-None-Match compares weakly), alone or
    in a list; a 200 for any other validator, even one that contains or starts the ETag."""
    reader = client if layer == "page cache" else request.getfixturevalue("kept_app").test_client()
    etag = reader.get(ARTICLE).headers["ETag"]
    reader.get(ARTICLE)
    assert conditional_answers(reader, etag) == {
        "the etag": 304,
        "any": 304,
        "weak": 304,
        "in a list": 304,
        "in a list without space": 304,
        "another": 200,
        "a prefix of it": 200,
        "it with more": 200,
    }


def test_the_kept_responses_answer_the_conditional_requests_themselves(kept_app):
    """The test above reaches the kept responses' own answer, not Flask's."""
    from flask import request_started

    reader = kept_app.test_client()
    etag = reader.get(ARTICLE).headers["ETag"]
    reader.get(ARTICLE)
    dispatched: list[str] = []
    request_started.connect(
        lambda sender, **extra: dispatched.append("flask"), kept_app, weak=False
    )
    assert reader.get(ARTICLE, headers={"If-None-Match": "*"}).status_code == 304
    assert reader.get(ARTICLE, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert dispatched == []


@pytest.mark.parametrize(
    "cache_control, forbidden",
    [
        ("no-store", True),
        ("private, no-store", True),
        ("Private, No-Store", True),
        ('no-cache="Set-Cookie", no-store', True),
        ("private, no-cache", False),
        ('private, community="no-store"', False),
        ("x-no-store-hint", False),
        (None, False),
    ],
)
def test_no_store_is_read_as_a_directive_not_as_a_substring(cache_control, forbidden):
    assert forbids_storing(cache_control) is forbidden


@pytest.mark.parametrize(
    "vary, covered",
    [
        ("Cookie, Sec-GPC", True),
        ("accept-encoding,cookie,sec-gpc", True),
        ("Accept-Encoding, Cookie, Sec-GPC", True),
        ("Sec-GPC-Hint, Cookie", False),
        ("Cookie", False),
        (None, False),
    ],
)
def test_vary_is_read_as_a_list_of_names(vary, covered):
    assert varies_on(vary, ("Cookie", "Sec-GPC")) is covered


def test_a_view_that_varies_on_a_longer_name_still_gets_cookie_and_gpc(app, client):
    """The consent step adds ``Cookie`` and ``Sec-GPC`` to ``Vary`` unless both are there; a
    name that merely contains ``Sec-GPC`` is another header."""

    @app.route("/varies-on-a-hint")
    def varies_on_a_hint():
        return "<p>hint</p>", 200, {"Vary": "Sec-GPC-Hint", "Content-Type": "text/html"}

    vary = {name.lower() for name in client.get("/varies-on-a-hint").vary}
    assert {"sec-gpc-hint", "cookie", "sec-gpc"} <= vary


def test_only_the_no_store_directive_keeps_a_response_out_of_the_kept_responses():
    assert is_keepable("200 OK", [("Cache-Control", 'private, community="no-store"')])
    assert not is_keepable("200 OK", [("Cache-Control", "private, No-Store")])
    assert not is_keepable("200 OK", [("Content-Type", "text/html")])


@pytest.mark.parametrize(
    "headers, unchanged",
    [
        ({}, False),
        ({"HTTP_IF_NONE_MATCH": '"abc"'}, True),
        ({"HTTP_IF_NONE_MATCH": 'W/"abc"'}, True),
        ({"HTTP_IF_NONE_MATCH": "*"}, True),
        ({"HTTP_IF_NONE_MATCH": '"ab", "abcd"'}, False),
        ({"HTTP_IF_NONE_MATCH": '"abc"', "HTTP_IF_MATCH": '"other"'}, True),
        ({"HTTP_IF_MODIFIED_SINCE": "Thu, 01 Jan 2099 00:00:00 GMT"}, False),
    ],
)
def test_a_304_is_what_werkzeug_decides(headers, unchanged):
    environ = {"REQUEST_METHOD": "GET", **headers}
    assert not_modified(environ, "abc") is unchanged
    assert unchanged is not is_resource_modified(environ, etag="abc", ignore_if_range=True)


def test_the_validator_memo_keeps_a_bounded_number_of_answers():
    for number in range(DISTINCT_VALIDATORS + 50):
        not_modified({"HTTP_IF_NONE_MATCH": f'"{number}"'}, "abc")
    assert validator_matches.cache_info().currsize == DISTINCT_VALIDATORS
