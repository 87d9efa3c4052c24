"""The banner and Cookie settings say in plain words what a choice covers, who else receives
the reader's address, how long the choice lasts and where to change it or read more."""

from __future__ import annotations

import pytest
from bs4 import Tag

from tests.support.html import link_targets, one
from tests.support.pages import ARTICLE


def banner_of(page: str) -> Tag:
    return one(page, "#consent-banner")


def preferences_article(page: str) -> Tag:
    return one(page, "article.preferences")


def words(part: Tag) -> str:
    """What a reader reads in ``part``, its spacing tidied."""
    return " ".join(part.get_text(" ").split())


@pytest.mark.parametrize("path", ["/", ARTICLE])
def test_the_banner_states_the_purposes_the_video_host_the_lifetime_and_both_policies(
    app_factory, path
):
    app = app_factory(CONSENT_LIFETIME_DAYS=90)
    banner = banner_of(app.test_client().get(path).get_data(as_text=True))
    registry = app.extensions["consent"].registry
    text = words(banner)
    assert " ".join(registry.notice.text.split()) in text
    for purpose in ("text size", "videos", "count reads", "page loads", "promotions"):
        assert purpose in text
    assert "IP address and may set its own" in text
    assert "Your choice lasts 90 days; change it any time under Cookie settings." in text
    assert link_targets(banner, "privacy notice") == ["/privacy"]
    assert link_targets(banner, "cookie policy") == ["/cookie-policy"]


def test_the_preferences_say_the_same_and_name_the_third_party_in_functional(app_factory):
    app = app_factory(CONSENT_LIFETIME_DAYS=60)
    settings = preferences_article(app.test_client().get("/consent").get_data(as_text=True))
    assert "Your choice lasts 60 days; change it any time under Cookie settings." in words(settings)
    assert link_targets(settings, "privacy notice") == ["/privacy"]
    assert link_targets(settings, "cookie policy") == ["/cookie-policy"]
    functional = one(settings, "section[aria-labelledby=category-functional]")
    assert "receives your IP address and may set its own cookies" in words(functional)


def test_the_default_lifetime_shown_is_the_configured_182_days(client):
    banner = banner_of(client.get(ARTICLE).get_data(as_text=True))
    assert "Your choice lasts 182 days" in words(banner)
