"""The banner and Cookie settings say in plain words what a choice covers, who else receives
the reader's address, how long the choice lasts and where to change it or read more."""

from __future__ import annotations

import pytest

ARTICLE = "/articles/harrowmere-tidal-lagoon-switches-on"


def banner_of(page: str) -> str:
    start = page.index('<section id="consent-banner"')
    return page[start : page.index("</section>", start)]


def preferences_article(page: str) -> str:
    start = page.index('<article class="preferences">')
    return page[start : page.index("</article>", start)]


@pytest.mark.parametrize("path", ["/", ARTICLE])
def test_the_banner_states_the_purposes_the_video_host_the_lifetime_and_both_policies(
    app_factory, path
):
    app = app_factory(CONSENT_LIFETIME_DAYS=90)
    banner = banner_of(app.test_client().get(path).get_data(as_text=True))
    registry = app.extensions["consent"].registry
    assert registry.notice.text in banner
    for purpose in ("text size", "videos", "count reads", "page loads", "promotions"):
        assert purpose in banner
    assert "IP address and may set its own" in banner
    assert "Your choice lasts 90 days; change it any time under Cookie settings." in banner
    assert '<a href="/privacy">privacy notice</a>' in banner
    assert '<a href="/cookie-policy">cookie policy</a>' in banner


def test_the_preferences_say_the_same_and_name_the_third_party_in_functional(app_factory):
    app = app_factory(CONSENT_LIFETIME_DAYS=60)
    settings = preferences_article(app.test_client().get("/consent").get_data(as_text=True))
    assert "Your choice lasts 60 days; change it any time under Cookie settings." in settings
    assert '<a href="/privacy">privacy notice</a>' in settings
    assert '<a href="/cookie-policy">cookie policy</a>' in settings
    functional = settings[settings.index('id="category-functional"') :]
    functional = functional[: functional.index("</section>")]
    assert "receives your IP address and may set its own cookies" in functional


def test_the_default_lifetime_shown_is_the_configured_182_days(client):
    banner = banner_of(client.get(ARTICLE).get_data(as_text=True))
    assert "Your choice lasts 182 days" in banner
