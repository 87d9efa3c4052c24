"""Embeds over HTTP: a placeholder that loads nothing until the reader allows the provider."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from globalupdates.articles.importer import ArticleImportError, render_body
from tests.support.articles import import_articles
from tests.support.consent import SAME_ORIGIN, choose, records, static_path, stored_choice
from tests.support.html import select
from tests.support.pages import ARTICLE

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
            fields, name = self.forms[-1]["fields"], values["name"]
            value = values.get("value", "")
            if name in fields:  # a repeated name (the services) is sent as every value
                earlier = fields[name] if isinstance(fields[name], list) else [fields[name]]
                value = [*earlier, value]
            fields[name] = value


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


def show_once(client, token: str = TOKEN, path: str = ARTICLE, headers: dict | None = None):
    """Press "Show this once" as the browser sends it from the article itself."""
    return client.post(path, data={"embed": token}, headers={**SAME_ORIGIN, **(headers or {})})


def test_the_allow_once_button_posts_this_embed_back_to_the_article(client):
    html = client.get(ARTICLE).get_data(as_text=True)
    once, _ = embed_forms(html)
    assert once["method"] == "post"
    assert once["action"] == f"{ARTICLE}#embed-vidmoor-harrowmere-first-cycle"
    assert once["fields"] == {"embed": TOKEN}


def test_allowing_once_shows_the_frame_for_that_response_and_stores_nothing(client):
    client.get(ARTICLE)
    with client.session_transaction() as before:
        stored_before = dict(before)
    response = show_once(client)
    assert response.status_code == 200
    assert f'<iframe src="{EMBED_SRC}"' in response.get_data(as_text=True)
    with client.session_transaction() as after:
        assert dict(after) == stored_before
    assert "<iframe" not in client.get(ARTICLE).get_data(as_text=True)


@pytest.mark.parametrize("choice", [None, "reject_all"], ids=["no choice", "rejected all"])
def test_the_allow_once_answer_sets_no_cookie_and_is_never_stored(client, choice):
    if choice:
        choose(client, choice)
    response = show_once(client)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


def test_a_link_with_an_allow_once_value_loads_nothing_and_is_the_plain_page(client):
    """A GET is anybody's link: it must never make the reader's browser call the provider."""
    choose(client, "reject_all")
    plain = client.get(ARTICLE)
    linked = client.get(ARTICLE, query_string={"embed": TOKEN})
    html = linked.get_data(as_text=True)
    assert linked.status_code == 200
    assert "<iframe" not in html and EMBED_SRC not in html
    assert frame_src(linked) is None
    assert linked.headers["Cache-Control"] == plain.headers["Cache-Control"]
    # the page differs only in the address its settings links return to
    returns_to_link = html.replace(f"?embed={TOKEN}", "").replace(f"?embed%3D{TOKEN}", "")
    assert returns_to_link == plain.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://attacker.example"},
    ],
    ids=["cross-site", "same-site", "foreign origin"],
)
def test_an_allow_once_post_from_another_site_is_refused(client, headers):
    choose(client, "reject_all")
    response = client.post(ARTICLE, data={"embed": TOKEN}, headers=headers)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "<iframe" not in html and EMBED_SRC not in html
    assert PLAYER not in response.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "value",
    [
        "vidmoor:other-video",
        "nowhere:harrowmere-first-cycle",
        "vidmoor",
        "",
        "<script>",
        "x" * 500,
        "vidmoor:harrowmere-first-cycle\x00",
    ],
)
def test_an_allow_once_value_for_no_embed_on_the_page_is_a_400_that_loads_nothing(client, value):
    response = show_once(client, value)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "not part of this story" in html
    assert "<iframe" not in html and PLAYER not in html
    assert PLAYER not in response.headers["Content-Security-Policy"]
    assert "<script>" not in html


def test_an_allow_once_post_without_the_field_is_a_400(client):
    response = client.post(ARTICLE, data={}, headers=SAME_ORIGIN)
    assert response.status_code == 400
    assert "<iframe" not in response.get_data(as_text=True)


def test_another_storys_embed_cannot_be_shown_on_this_one(app, client, tmp_path):
    import_articles(app, tmp_path, ("quiet-story", {"body": "No embeds here.\n"}))
    assert show_once(client, path="/articles/quiet-story").status_code == 400


@pytest.mark.parametrize("path", ["/articles/no-such-story", "/articles/Not_A_Slug"])
def test_an_allow_once_post_to_no_article_is_a_404(client, path):
    assert show_once(client, path=path).status_code == 404


def test_allowing_once_is_neither_rate_limited_nor_recorded_as_a_choice(app, client):
    """The reader may look at embeds as often as they like; only choices are limited and
    kept, and this is not one."""
    choose(client, "reject_all")
    before = records(app)
    limit = int(app.config["RATELIMIT_CONSENT_PER_READER"].split()[0])
    for _ in range(limit * 3):
        response = show_once(client)
        assert response.status_code == 200
        assert not any(name.lower().startswith("x-ratelimit") for name, _ in response.headers)
    assert [r.id for r in records(app)] == [r.id for r in before]
    assert stored_choice(client)["categories"] == ["necessary"]


def test_the_grant_button_posts_the_service_with_those_already_granted(client):
    choose(client, "save", ("analytics",))
    html = client.get(ARTICLE).get_data(as_text=True)
    _, grant = embed_forms(html)
    assert grant["method"] == "post" and grant["action"] == "/consent"
    fields = grant["fields"]
    assert fields["action"] == "save" and fields["next"] == ARTICLE
    assert {k for k, v in fields.items() if v == "on"} == {"analytics", "functional"}
    assert fields["services"] == ["tallyhouse", "vidmoor"] and fields["exact_services"] == "1"
    assert set(fields) == {
        "action",
        "next",
        "analytics",
        "functional",
        "services",
        "exact_services",
    }


def test_the_grant_button_keeps_a_video_service_the_reader_refused_refused(client):
    choose(client, "save", ("functional",), exact_services=True)
    html = client.get(ARTICLE).get_data(as_text=True)
    _, grant = embed_forms(html)
    client.post(grant["action"], data=grant["fields"], headers=SAME_ORIGIN)
    assert stored_choice(client)["services"] == ["vidmoor"]


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
    assert [embed.attrs for embed in select(html, "gu-embed")] == [
        {"data-provider": "vidmoor", "data-ref": "clip_1"}
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
    once = show_once(client)
    assert frame_src(once) == f"frame-src {PLAYER}"
    assert frame_src(client.get(ARTICLE)) is None
    choose(client, "save", ("functional",))
    assert frame_src(client.get(ARTICLE)) == f"frame-src {PLAYER} https://embed.clipwell.example"
    choose(client, "save", ("functional",), services=("vidmoor",))
    assert frame_src(client.get(ARTICLE)) == f"frame-src {PLAYER}"
    choose(client, "save", ("analytics",))
    assert frame_src(client.get(ARTICLE)) is None
