"""Profile the site's own work per request, in one process, without HTTP in the way.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/profile_requests.py article-stored      # pyinstrument's call tree
    .venv/bin/python bench/profile_requests.py consent --requests 500

Each scenario is the same request the wrk bench sends. CPU time per request is printed
first, so a change can be judged by it rather than by req/s on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from tests.support.consent import SAME_ORIGIN
from tests.support.pages import ARTICLE


def prepared_app():
    folder = tempfile.mkdtemp(prefix="gu-profile-")
    os.environ.setdefault("FLASK_INSTANCE_PATH", folder)
    os.environ.setdefault("FLASK_SECRET_KEY", "profile-secret-not-for-production")
    os.environ.setdefault("FLASK_SQLALCHEMY_DATABASE_URI", f"sqlite:///{folder}/profile.sqlite3")
    for name in ("CONSENT_PER_READER", "CONSENT_PER_ADDRESS", "BEACON_PER_READER"):
        os.environ.setdefault(f"FLASK_RATELIMIT_{name}", "10000000 per minute")
    from globalupdates import create_app
    from globalupdates.prepare import prepare_site

    app = create_app()
    prepare_site(app)
    return app


def scenarios(app) -> dict[str, Callable[[], object]]:
    anonymous = app.test_client(use_cookies=False)
    reader = app.test_client()
    reader.get("/consent")
    choice = {"action": "accept_all"}
    reader.post("/consent", data=choice, headers=SAME_ORIGIN)
    return {
        "article-first": lambda: anonymous.get(ARTICLE),
        "article-stored": lambda: reader.get(ARTICLE),
        "front": lambda: reader.get("/"),
        "consent": lambda: reader.post("/consent", data=choice, headers=SAME_ORIGIN),
        "beacon": lambda: reader.post(
            "/features/pageview", json={"path": ARTICLE}, headers=SAME_ORIGIN
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenario", choices=["article-first", "article-stored", "front", "consent", "beacon"]
    )
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    request = scenarios(prepared_app())[args.scenario]
    for _ in range(50):
        request()
    started = time.process_time()
    for _ in range(args.requests):
        request()
    spent = (time.process_time() - started) / args.requests
    print(f"{args.scenario}: {spent * 1000:.2f} ms of CPU per request, in process")
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(args.requests):
            request()
    print(profiler.output_text(color=False, unicode=False))


if __name__ == "__main__":
    main()
