"""The floor: a bare Flask app that answers what the site answers, doing nothing else.

bench/run.py captures, over HTTP, every page's bytes as the site serves them (the gzip body
with ``Content-Encoding: gzip`` to a request that accepts gzip, the identity body otherwise),
once for a first visit and once for a reader who accepted all, and names the file in
``BENCH_BARE_PAGES``. This app, run under the site's own gunicorn.conf.py, then has:

- one catch-all view returning each URL's own bytes (a reader's when the request carries a
  cookie, a first visit's otherwise);
- a consent POST that parses the same form, keeps a similar choice in Flask's own signed
  session cookie (permanent, as the site's) and answers 303;
- a page-view POST that parses the JSON and answers JSON.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, redirect, request, session
from flask.typing import ResponseReturnValue

PAGES_VARIABLE = "BENCH_BARE_PAGES"
Answer = tuple[bytes, dict[str, str]]


def load_pages(path: Path) -> dict[str, Any]:
    """The captured pages: ``{"first_visit"|"reader": {url: {"gzip"|"identity": answer}}}``."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    pages: dict[str, dict[str, dict[str, Answer]]] = {}
    for visitor, urls in raw["pages"].items():
        pages[visitor] = {
            url: {
                coding: (base64.b64decode(answer["body"]), answer["headers"])
                for coding, answer in codings.items()
            }
            for url, codings in urls.items()
        }
    return {"pages": pages, "categories": raw["categories"], "secret_key": raw["secret_key"]}


def create_app() -> Flask:
    """The app, for gunicorn as ``bench.bare_app:create_app()``."""
    captured = load_pages(Path(os.environ[PAGES_VARIABLE]))
    first_visit, reader = captured["pages"]["first_visit"], captured["pages"]["reader"]
    categories: list[str] = captured["categories"]
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=captured["secret_key"],
        SESSION_COOKIE_NAME="gu_session",
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=182),
    )

    @app.get("/", defaults={"path": ""})
    @app.get("/<path:path>")
    def page(path: str) -> ResponseReturnValue:
        query = request.environ.get("QUERY_STRING", "")
        url = request.environ["PATH_INFO"] + (f"?{query}" if query else "")
        pages = reader if "Cookie" in request.headers else first_visit
        codings = pages.get(url)
        if codings is None:
            abort(404)
        coding = "gzip" if "gzip" in request.headers.get("Accept-Encoding", "") else "identity"
        body, headers = codings[coding]
        return body, 200, headers

    @app.post("/consent")
    @app.post("/<edition>/consent")
    def choose(edition: str = "") -> ResponseReturnValue:
        action = request.form.get("action")
        if action == "accept_all":
            granted = set(categories)
        elif action == "reject_all":
            granted = set()
        elif action == "save":
            granted = {name for name in categories if request.form.get(name) == "on"}
        else:
            abort(400)
        session["consent"] = {
            "id": str(uuid.uuid4()),
            "categories": sorted({"necessary", *granted}),
            "made_at": int(time.time()),
            "revision": 1,
            "gpc": False,
        }
        session.permanent = True
        target = request.form.get("next", "/")
        return redirect(target if target.startswith("/") else "/", 303)

    @app.post("/features/pageview")
    def page_view() -> ResponseReturnValue:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            abort(400)
        return jsonify(path=data["path"], views=1)

    return app
