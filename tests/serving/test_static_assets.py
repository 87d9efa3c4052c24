"""Static files: pages link content-hashed names, which are served as immutable."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from flask import Flask

from globalupdates import assets
from globalupdates.extensions import static_digest
from tests.support.apps import STATIC_DIR, compile_static
from tests.support.html import linked_urls
from tests.support.pages import KESSLING

IMMUTABLE = "public, max-age=31536000, immutable"
DIGESTED = re.compile(r"^(?P<stem>.+)-(?P<md5>[0-9a-f]{32})(?P<ext>\.[a-z]+)$")


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def manifest(folder: Path = STATIC_DIR) -> dict[str, str]:
    return json.loads((folder / "cache_manifest.json").read_text(encoding="utf-8"))


def linked(html: str, plain: str) -> str:
    """The href or src in the page that stands for ``plain`` (its stem and extension)."""
    stem, ext = plain.rsplit(".", 1)
    names_plain = re.compile(rf"/static/{re.escape(stem)}(-[0-9a-f]{{32}})?\.{ext}")
    found = [url for url in linked_urls(html) if names_plain.fullmatch(url)]
    assert len(found) == 1, f"{plain} is linked {len(found)} times"
    return found[0]


def assert_fingerprinted(url: str, plain: str, folder: Path = STATIC_DIR) -> None:
    """The URL names the manifest's copy of ``plain``, whose hash is the MD5 of the source."""
    name = url.removeprefix("/static/")
    assert name == manifest(folder)[plain]
    match = DIGESTED.match(name)
    assert match is not None, f"{url} carries no digest"
    assert match["stem"] + match["ext"] == plain
    assert match["md5"] == md5_of(folder / plain)


def test_article_page_links_the_stylesheet_and_consent_script_by_their_digest(client):
    html = client.get(KESSLING).get_data(as_text=True)
    for plain in ("css/site.css", "js/consent.js", "favicon.svg"):
        assert_fingerprinted(linked(html, plain), plain)


def test_a_digested_url_is_served_as_immutable(client):
    html = client.get(KESSLING).get_data(as_text=True)
    for plain in ("css/site.css", "js/consent.js"):
        with client.get(linked(html, plain)) as response:
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == IMMUTABLE
            assert response.get_data() == (STATIC_DIR / plain).read_bytes()
            etag = response.headers["ETag"]

        with client.get(linked(html, plain), headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304
            assert again.headers["Cache-Control"] == IMMUTABLE


def test_a_plain_name_is_still_served_and_revalidated(client):
    with client.get("/static/css/site.css") as response:
        assert response.status_code == 200
        assert response.get_data() == (STATIC_DIR / "css/site.css").read_bytes()
        assert response.headers["Cache-Control"] == "no-cache"


def test_a_missing_file_is_not_marked_immutable(client):
    response = client.get(f"/static/css/gone-{'0' * 32}.css")
    assert response.status_code == 404
    assert "immutable" not in response.headers.get("Cache-Control", "")


def test_every_feature_script_has_a_digested_url(app: Flask):
    scripts = sorted(path.name for path in (STATIC_DIR / "features").glob("*.js"))
    scripts = [name for name in scripts if not assets.is_digested(name)]
    assert scripts, "no feature scripts found"
    with app.test_request_context("/"):
        for name in scripts:
            assert_fingerprinted(assets.static_url(f"features/{name}"), f"features/{name}")


def test_static_url_keeps_the_script_root_and_falls_back_to_the_plain_name(app: Flask):
    with app.test_request_context("/", base_url="http://news.example/mounted"):
        assert assets.static_url("css/site.css") == "/mounted/static/" + manifest()["css/site.css"]
        assert assets.static_url("css/not-compiled.css") == "/mounted/static/css/not-compiled.css"


def sources_only(folder: str, names: list[str]) -> set[str]:
    return {
        name
        for name in names
        if assets.is_digested(name) or name.endswith(".gz") or name == "cache_manifest.json"
    }


def test_changing_a_file_and_recompiling_changes_its_url(app_factory, tmp_path: Path):
    folder = tmp_path / "static"
    shutil.copytree(STATIC_DIR, folder, ignore=sources_only)
    assert not (folder / "cache_manifest.json").exists()

    def app_on_folder() -> Flask:
        app = app_factory()
        app.static_folder = str(folder)
        static_digest.init_app(app)  # read this folder's manifest, as create_app does for static/
        return app

    compile_static(folder)
    before_app = app_on_folder()
    before = linked(before_app.test_client().get("/").get_data(as_text=True), "css/site.css")
    assert_fingerprinted(before, "css/site.css", folder)
    old_content = (folder / "css/site.css").read_bytes()

    stylesheet = folder / "css/site.css"
    stylesheet.write_bytes(old_content + b"\n.changed-for-this-test { color: red; }\n")
    compile_static(folder)
    after_app = app_on_folder()
    client = after_app.test_client()
    after = linked(client.get("/").get_data(as_text=True), "css/site.css")

    assert after != before
    assert_fingerprinted(after, "css/site.css", folder)
    with client.get(after) as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.get_data() == stylesheet.read_bytes()
    # The previous copy stays, so a page cached before the change still gets its stylesheet.
    with client.get(before) as response:
        assert response.get_data() == old_content
