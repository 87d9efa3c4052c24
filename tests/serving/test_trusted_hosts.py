"""The site answers only for the host names it trusts; a forged Host gets 400 and nothing else."""

from __future__ import annotations

import pytest

from globalupdates import trusted_hosts
from tests.support.consent import SAME_ORIGIN, records
from tests.support.pages import ARTICLE

FORGED = ("evil.example", 'a"b', "evil.example:8080")


@pytest.mark.parametrize("host", FORGED)
@pytest.mark.parametrize(
    "path", ["/", ARTICLE, "/articles//harrowmere-tidal-lagoon-switches-on", "/sitemap.xml"]
)
def test_a_forged_host_gets_a_plain_400(client, host, path):
    response = client.get(path, headers={"Host": host})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert host not in response.get_data(as_text=True)


def test_a_choice_sent_to_a_forged_host_changes_nothing(app, client):
    response = client.post(
        "/consent", data={"action": "accept_all"}, headers={"Host": "evil.example", **SAME_ORIGIN}
    )
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers
    assert records(app) == []


def test_a_trusted_host_is_served_and_its_redirects_stay_on_it(client):
    assert client.get(ARTICLE, headers={"Host": "news.example"}).status_code == 200
    redirect = client.get(
        "/articles//harrowmere-tidal-lagoon-switches-on", headers={"Host": "localhost"}
    )
    assert redirect.status_code == 308
    assert redirect.headers["Location"].removeprefix("http://localhost").startswith("/articles/")


def test_by_default_loopback_and_the_canonical_host_are_trusted():
    assert trusted_hosts({"CANONICAL_ORIGIN": "https://news.example"}) == [
        "localhost",
        "127.0.0.1",
        "[::1]",
        "news.example",
    ]
    assert trusted_hosts({"TRUSTED_HOSTS": "a.example, .b.example"}) == ["a.example", ".b.example"]
