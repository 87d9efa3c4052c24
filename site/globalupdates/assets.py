"""Static files under content-hashed names, so a browser may keep them for a year.

``flask digest compile`` (Flask-Static-Digest) writes, next to every file in ``static/``, a
copy named after the MD5 of its content (``css/site-<md5>.css``) and ``cache_manifest.json``,
which maps each plain name to its copy. The extension reads that manifest once, when
``init_app`` runs, so the manifest must exist before the app is created: ``make run`` and
``make test`` compile it first, and the test suite compiles it when it is missing.

A name that carries its digest can never change content, so it is served as immutable. A
plain name keeps Flask's ``no-cache`` (the browser revalidates it with its ETag each time):
it only appears in a page when a file is missing from the manifest, and after a deploy its
content may differ, so a browser must not keep an old copy without asking.

The compile step also writes a ``.gz`` copy of each file. The app never serves those; a
front server can hand them out as they are (nginx ``gzip_static on;``).
"""

from __future__ import annotations

import re

from flask import Flask, Response, request

from .extensions import static_digest

IMMUTABLE = "public, max-age=31536000, immutable"

# The names Flask-Static-Digest gives its copies: "<name>-<32 hex digits><extension>", where
# the extension may be followed by ".gz" or ".br" for the compressed copies.
DIGESTED_NAME = re.compile(r"-[0-9a-f]{32}(\.[\w.]+)?$")


def init_app(app: Flask) -> None:
    static_digest.init_app(app)
    app.add_template_global(static_url)


def static_url(filename: str) -> str:
    """The URL path of a file in ``static/`` under its digested name, with the request's
    script root as ``url_for('static', ...)`` gives; the plain name when the manifest lacks it.
    """
    return static_digest.static_url_for("static", filename=filename)


def is_digested(filename: str) -> bool:
    return DIGESTED_NAME.search(filename.rsplit("/", 1)[-1]) is not None


def cache_digested_files_for_good(response: Response) -> Response:
    if (
        request.endpoint == "static"
        and response.status_code in (200, 206, 304)
        and is_digested((request.view_args or {}).get("filename", ""))
    ):
        response.headers["Cache-Control"] = IMMUTABLE
    return response
