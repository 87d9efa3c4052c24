"""Embed providers in the consent registry: parsed, validated, and asked by the engine."""

from __future__ import annotations

import copy
import tomllib

import pytest

from globalupdates.consent.model.registry_file import (
    BUILTIN_REGISTRY,
    RegistryError,
    load_registry,
    parse_registry,
)
from globalupdates.consent.web.embed_providers import (
    allow_provider_once,
    allowed_once_providers,
    frame_origins,
    provider_granted,
)
from globalupdates.consent.web.request_hooks import current_consent

PLAYER = "https://player.vidmoor.example"


def framed_now() -> tuple[str, ...]:
    """The origins this request may frame, as the policy step asks for them."""
    return frame_origins(current_consent(), allowed_once_providers())


def provider_allowed(key: str) -> bool:
    return provider_granted(key) or key in allowed_once_providers()


@pytest.fixture
def registry_data() -> dict:
    return tomllib.loads(BUILTIN_REGISTRY.read_text(encoding="utf-8"))


def with_provider(data: dict, **changes: object) -> dict:
    changed = copy.deepcopy(data)
    changed["providers"][0].update(changes)
    return changed


def test_the_shipped_registry_declares_the_demonstration_video_host():
    registry = load_registry()
    provider = registry.provider("vidmoor")
    assert provider.category == "functional"
    assert provider.origins == (PLAYER,)
    assert provider.embed_src("abc") == f"{PLAYER}/embed/abc"
    assert provider.page_href("abc") == "https://vidmoor.example/watch/abc"
    assert "demonstrat" in provider.name.lower()
    assert [c.name for c in provider.cookies] == ["vm_viewer"]
    assert provider.cookies[0].provider == provider.name


def test_a_registry_without_providers_is_still_valid(registry_data):
    del registry_data["providers"]
    assert parse_registry(registry_data).providers == ()


def test_providers_are_part_of_the_notice_hash(registry_data):
    changed = with_provider(registry_data, description="Now it also tracks you elsewhere.")
    assert parse_registry(changed).notice_hash != parse_registry(registry_data).notice_hash


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"category": "necessary"}, "providers.vidmoor.category"),
        ({"category": "nowhere"}, "providers.vidmoor.category"),
        ({"key": "Not A Key"}, "providers[0].key"),
        ({"origins": []}, "providers.vidmoor.origins"),
        ({"origins": ["http://player.vidmoor.example"]}, "providers.vidmoor.origins"),
        ({"origins": ["https://player.vidmoor.example/path"]}, "providers.vidmoor.origins"),
        ({"embed_url": "https://elsewhere.example/embed/{id}"}, "providers.vidmoor.embed_url"),
        ({"embed_url": "https://player.vidmoor.example/embed"}, "providers.vidmoor.embed_url"),
        ({"embed_url": "javascript:alert(1)//{id}"}, "providers.vidmoor.embed_url"),
        ({"page_url": 'https://vidmoor.example/watch/{id}"><x'}, "providers.vidmoor.page_url"),
        ({"name": ""}, "providers.vidmoor.name"),
        ({"cookies": [{"name": "x"}]}, "providers.vidmoor.cookies[0].description"),
    ],
)
def test_a_bad_provider_is_refused_with_the_key_named(registry_data, changes, named):
    with pytest.raises(RegistryError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_registry(with_provider(registry_data, **changes))


def test_a_provider_declared_twice_is_refused(registry_data):
    registry_data["providers"].append(copy.deepcopy(registry_data["providers"][0]))
    with pytest.raises(RegistryError, match="provider key 'vidmoor' is declared twice"):
        parse_registry(registry_data)


def test_the_engine_allows_a_provider_only_with_its_category(app):
    with app.test_request_context("/"):
        assert not provider_granted("vidmoor")
        assert not provider_allowed("vidmoor")
        assert framed_now() == ()


def test_granting_the_category_allows_the_provider_and_its_frame_origin(app):
    client = app.test_client()
    from tests.support.consent import choose

    choose(client, "save", ("functional",))
    with client.session_transaction() as stored:
        session_data = dict(stored)
    with app.test_request_context("/"):
        from flask import session

        session.update(session_data)
        assert provider_granted("vidmoor")
        assert framed_now() == (PLAYER, "https://embed.clipwell.example")


def test_allowing_once_lasts_for_one_request_only(app):
    with app.test_request_context("/"):
        assert allow_provider_once("vidmoor")
        assert provider_allowed("vidmoor") and not provider_granted("vidmoor")
        assert framed_now() == (PLAYER,)
        assert not allow_provider_once("undeclared")
    with app.test_request_context("/"):
        assert not provider_allowed("vidmoor")
        assert framed_now() == ()


def test_the_csp_helper_sees_what_the_article_page_allowed(app):
    """The compliance step runs after the view, so it must see a one-off allowance too."""
    seen: list[tuple[str, ...]] = []

    @app.after_request
    def record(response):
        seen.append(framed_now())
        return response

    client = app.test_client()
    article = "/articles/harrowmere-tidal-lagoon-switches-on"
    shown_once = {"embed": "vidmoor:harrowmere-first-cycle"}
    client.get(article)
    once = client.post(article, data=shown_once, headers={"Sec-Fetch-Site": "same-origin"})
    # a link carrying the same value allows nothing: rendered, nor from the page cache or the
    # kept responses (the second never reaches Flask's hooks)
    linked = [client.get(article, query_string=shown_once) for _ in range(2)]
    assert seen[:3] == [(), (PLAYER,), ()]
    assert f"frame-src {PLAYER}" in once.headers["Content-Security-Policy"]
    assert all(PLAYER not in page.headers["Content-Security-Policy"] for page in linked)
