"""Embeds over HTTP: a placeholder that loads nothing until the reader allows the provider."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from article_factory import import_articles
from consent_support import static_path

from conftest import SAME_ORIGIN, choose
from globalupdates.articles.importer import ArticleImportError, render_body

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"
PLAYER = "https://player.vidmoor.example"
EMBED_SRC = f"{PLAYER}/embed/harrowmere-first-cycle"
TOKEN = "vidmoor:harrowmere-first-cycle"


class Forms(HTMLParser):
    """The forms of a page with their method, action and fields, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"method": values.get("method", "get"), "action": values["action"], "fields": {}}
            )
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")


def forms_of(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def embed_forms(html: str) -> tuple[dict, dict]:
    forms = [f for f in forms_of(html) if "embed" in f["fields"] or "save" in f["fields"].values()]
    once = next(f for f in forms if "embed" in f["fields"])
    grant = next(f for f in forms if f["fields"].get("action") == "save")
    return once, grant


def test_before_consent_the_page_holds_a_placeholder_and_nothing_from_the_provider(client):
    html = client.get(ARTICLE).get_data(as_text=True)
    assert "<iframe" not in html
    assert PLAYER not in html
    assert "Vidmoor (demonstration video host)" in html
    assert "vm_viewer" in html and "6 months" in html
    assert 'href="https://vidmoor.example/watch/harrowmere-first-cycle"' in html


def test_the_allow_once_button_is_a_plain_get_form_for_this_embed(client):
    html = client.get(ARTICLE).get_data(as_text=True)
    once, _ = embed_forms(html)
    assert once["method"] == "get"
    assert once["action"] == f"{ARTICLE}#embed-vidmoor-harrowmere-first-cycle"
    assert once["fields"] == {"embed": TOKEN}


def test_allowing_once_shows_the_frame_for_that_response_and_stores_nothing(client):
    client.get(ARTICLE)
    with client.session_transaction() as before:
        stored_before = dict(before)
    html = client.get(ARTICLE, query_string={"embed": TOKEN}).get_data(as_text=True)
    assert f'<iframe src="{EMBED_SRC}"' in html
    with client.session_transaction() as after:
        assert dict(after) == stored_before
    assert "<iframe" not in client.get(ARTICLE).get_data(as_text=True)


@pytest.mark.parametrize(
    "value",
    ["vidmoor:other-video", "nowhere:harrowmere-first-cycle", "vidmoor", "<script>", "x" * 500],
)
def test_an_allow_once_value_for_no_embed_on_the_page_shows_nothing(client, value):
    response = client.get(ARTICLE, query_string={"embed": value})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<iframe" not in html and PLAYER not in html
    assert "<script>" not in html.split("<body>")[1].split("<footer")[0].replace(
        '<script type="application/ld+json"', ""
    )


def test_the_grant_button_posts_the_category_with_those_already_granted(client):
    choose(client, "save", ("analytics",))
    html = client.get(ARTICLE).get_data(as_text=True)
    _, grant = embed_forms(html)
    assert grant["method"] == "post" and grant["action"] == "/consent"
    fields = grant["fields"]
    assert fields["action"] == "save" and fields["next"] == ARTICLE
    assert {k for k, v in fields.items() if v == "on"} == {"analytics", "functional"}
    assert set(fields) == {"action", "next", "analytics", "functional"}  # and no token


def test_pressing_grant_keeps_earlier_grants_and_then_renders_the_frame(app, client):
    choose(client, "save", ("analytics",))
    html = client.get(ARTICLE).get_data(as_text=True)
    _, grant = embed_forms(html)
    response = client.post(grant["action"], data=grant["fields"], headers=SAME_ORIGIN)
    assert response.status_code == 303 and response.headers["Location"] == ARTICLE
    page = client.get(ARTICLE).get_data(as_text=True)
    assert f'<iframe src="{EMBED_SRC}"' in page
    assert f'src="{static_path(app, "features/pageviews.js")}"' in page
    assert f'src="{static_path(app, "features/textsize.js")}"' in page


def test_a_reader_who_rejects_all_sees_the_placeholder(client):
    choose(client, "reject_all")
    html = client.get(ARTICLE).get_data(as_text=True)
    assert "<iframe" not in html and PLAYER not in html
    _, grant = embed_forms(html)
    assert grant["fields"]["action"] == "save" and grant["fields"]["functional"] == "on"


def test_feeds_link_to_the_provider_page_instead_of_framing_it(client):
    feed = client.get("/feed.atom").get_data(as_text=True)
    assert PLAYER not in feed and "&lt;iframe" not in feed
    assert "https://vidmoor.example/watch/harrowmere-first-cycle" in feed


def test_the_cookie_policy_lists_the_provider_and_its_cookie(client):
    html = client.get("/cookie-policy").get_data(as_text=True)
    assert "Vidmoor (demonstration video host)" in html
    assert "vm_viewer" in html


def test_the_directive_becomes_a_marker_that_sanitising_cannot_forge(app):
    with app.app_context():
        html = render_body(
            "Before.\n\n{{embed vidmoor clip_1 | A <b>bold</b> caption}}\n\n"
            '<gu-embed data-provider="vidmoor" data-ref="forged">x</gu-embed>\n\n'
            "```\n{{embed vidmoor inside-code}}\n```\n"
        )
    assert re.findall(r"<gu-embed[^>]*>", html) == [
        '<gu-embed data-provider="vidmoor" data-ref="clip_1">'
    ]
    assert "A &lt;b&gt;bold&lt;/b&gt; caption</gu-embed>" in html
    assert "{{embed vidmoor inside-code}}" in html


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{{embed nowhere abc}}", "not declared in the consent registry"),
        ("{{embed vidmoor bad/id}}", "may use only letters"),
        ("{{embed vidmoor abc | " + "x" * 201 + "}}", "caption is over 200"),
    ],
)
def test_a_bad_directive_stops_the_import_and_names_the_file_and_line(app, tmp_path, line, message):
    with pytest.raises(ArticleImportError, match=rf"bad\.md: line 3: .*{message}"):
        import_articles(app, tmp_path, ("bad", {"body": f"One.\n\n{line}\n"}))


def frame_src(response) -> str | None:
    policy = response.headers["Content-Security-Policy"]
    found = [d.strip() for d in policy.split(";") if d.strip().startswith("frame-src")]
    return found[0] if found else None


def test_the_policy_lets_the_page_frame_the_provider_only_once_allowed(client):
    before = client.get(ARTICLE)
    assert frame_src(before) is None
    assert "default-src 'none'" in before.headers["Content-Security-Policy"]
    once = client.get(ARTICLE, query_string={"embed": TOKEN})
    assert frame_src(once) == f"frame-src {PLAYER}"
    assert frame_src(client.get(ARTICLE)) is None
    choose(client, "save", ("functional",))
    assert frame_src(client.get(ARTICLE)) == f"frame-src {PLAYER}"
    choose(client, "save", ("analytics",))
    assert frame_src(client.get(ARTICLE)) is None
