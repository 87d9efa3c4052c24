"""Work the site no longer repeats on every request, and what must still happen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import template_rendered
from sqlalchemy import event

from globalupdates.articles.importer import import_paths
from globalupdates.extensions import db
from tests.support.apps import CONTENT_DIR
from tests.support.consent import choose, set_cookie_names, static_path, store_choice
from tests.support.pages import ARTICLE


def test_a_stored_choice_is_not_re_signed_on_every_page(client):
    """The cookie is written when the choice changes, not again on each later page."""
    response = choose(client, "accept_all")
    assert response.status_code == 303
    assert "gu_session" in set_cookie_names(response)
    later = client.get(ARTICLE)
    assert later.status_code == 200
    assert set_cookie_names(later) == []


def test_the_article_lookup_still_finds_each_article_and_refuses_others(client):
    assert client.get(ARTICLE).status_code == 200
    assert b"Harrowmere" in client.get(ARTICLE).data
    assert client.get("/articles/no-such-story").status_code == 404


def test_the_front_page_lists_newest_first(client):
    html = client.get("/").get_data(as_text=True)
    positions = [html.find(word) for word in ("rethink", "Kessling", "Harrowmere")]
    assert all(position > 0 for position in positions)
    assert positions == sorted(positions)


def test_the_registry_works_out_its_notice_hash_once(app):
    """Every consent record carries the hash; it was recomputed from scratch per request."""
    registry = app.extensions["consent"].registry
    first = registry.notice_hash
    assert registry.notice_hash is first
    assert registry.optional_keys is registry.optional_keys
    assert len(first) == 64


@contextmanager
def counted(app) -> Iterator[dict[str, int]]:
    """Count the SQL statements and template renders inside the block."""
    seen = {"queries": 0, "renders": 0}

    def query(*args, **kwargs) -> None:
        seen["queries"] += 1

    def render(*args, **kwargs) -> None:
        seen["renders"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", query)
    template_rendered.connect(render, app)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", query)
        template_rendered.disconnect(render, app)


def test_gated_script_urls_are_fingerprinted_and_follow_the_mount_point(app, client):
    choose(client, "accept_all")
    response = client.get(ARTICLE)
    pageviews = static_path(app, "features/pageviews.js")
    assert re.fullmatch(r"/static/features/pageviews-[0-9a-f]{32}\.js", pageviews)
    assert f'src="{pageviews}"' in response.get_data(as_text=True)
    assert f"http://localhost{pageviews} " in response.headers["Content-Security-Policy"]
    mounted = client.get(ARTICLE, environ_overrides={"SCRIPT_NAME": "/news"})
    assert f'src="/news{pageviews}"' in mounted.get_data(as_text=True)


def test_the_policy_built_once_still_follows_the_mount_point(app, client):
    """The policy names each script's exact URL, so one built for a page at the root must
    not be reused for the same page under another mount point, or its scripts are blocked."""
    choose(client, "accept_all")
    pageviews = static_path(app, "features/pageviews.js")
    at_root = client.get(ARTICLE).headers["Content-Security-Policy"]
    assert f"http://localhost{pageviews} " in at_root
    mounted = client.get(ARTICLE, environ_overrides={"SCRIPT_NAME": "/news"})
    assert f'src="/news{pageviews}"' in mounted.get_data(as_text=True)
    assert f"http://localhost/news{pageviews} " in mounted.headers["Content-Security-Policy"]


def test_each_page_is_rendered_once_per_state(app):
    reader, other = app.test_client(), app.test_client()
    store_choice(reader, {"analytics"})
    store_choice(other, {"analytics"})
    with counted(app) as cost:
        first = reader.get(ARTICLE)
        assert other.get(ARTICLE).data == first.data
        assert reader.get(ARTICLE).status_code == 200
    assert cost["renders"] == 1
    store_choice(other, {"functional"})
    with counted(app) as cost:
        assert other.get(ARTICLE).data != first.data
    assert cost["renders"] == 1


def test_a_page_served_from_the_cache_asks_the_database_nothing(app_factory):
    app = app_factory(CONTENT_CHECK_SECONDS=60)
    with app.app_context():
        import_paths([CONTENT_DIR])
    app.test_client().get(ARTICLE)  # the first visitor's page is rendered and kept
    reader = app.test_client()
    store_choice(reader, {"analytics", "functional"})
    reader.get(ARTICLE)  # and this state's page too
    with counted(app) as cost:
        assert app.test_client().get(ARTICLE).status_code == 200
        later = app.test_client()
        store_choice(later, {"analytics", "functional"})
        assert later.get(ARTICLE).status_code == 200
    assert cost == {"queries": 0, "renders": 0}


def test_the_policy_of_a_state_is_built_once(app):
    reader = app.test_client()
    store_choice(reader, {"analytics"})
    policies = app.extensions["consent"].policies
    policies.clear()
    headers = [reader.get(path).headers["Content-Security-Policy"] for path in ("/", ARTICLE)]
    assert headers[0] == headers[1]
    assert len(policies) == 1
    other = app.test_client()
    store_choice(other, {"analytics"})
    other.get("/cookie-policy")
    assert len(policies) == 1
    store_choice(other, set())
    other.get("/")
    assert len(policies) == 2
