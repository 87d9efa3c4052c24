"""Profile the site's own work per request, in one process, without HTTP in the way.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/profile_requests.py article-stored      # pyinstrument's call tree
    .venv/bin/python bench/profile_requests.py consent --requests 500
    .venv/bin/python bench/profile_requests.py beacon --rounds 7 --no-tree   # figures only

Each scenario is the same request the wrk bench sends. CPU time per request is printed
first, so a change can be judged by it rather than by req/s on a busy machine: one figure
per round of ``--requests``, then the best and the median round (on a shared machine the best
round is the one least disturbed by others). ``FLASK_SQLALCHEMY_DATABASE_URI`` runs it on
another database (a PostgreSQL one made for it, say).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

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
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --requests to time")
    parser.add_argument("--no-tree", action="store_true", help="print the figures only")
    args = parser.parse_args()
    request = scenarios(prepared_app())[args.scenario]
    for _ in range(50):
        request()
    rounds = [cpu_per_request(request, args.requests) for _ in range(args.rounds)]
    for spent in rounds:
        print(f"{args.scenario}: {spent * 1e6:.0f} µs of CPU per request, in process")
    if args.rounds > 1:
        best, middle = min(rounds) * 1e6, median(rounds) * 1e6
        print(f"{args.scenario}: best {best:.0f} µs, median {middle:.0f} µs")
    if args.no_tree:
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(args.requests):
            request()
    print(profiler.output_text(color=False, unicode=False))


def cpu_per_request(request: Callable[[], object], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        request()
    return (time.process_time() - started) / count


if __name__ == "__main__":
    main()
