"""Time `flask consent stats` on a million consent records, on SQLite and PostgreSQL.

    .venv/bin/python bench/stats_bench.py                        # SQLite, 1,000,000 records
    .venv/bin/python bench/stats_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/stats_bench.py --records 100000 --report

Each database is made afresh (a temporary SQLite file; a PostgreSQL database of its own
beside the one named, dropped at the end), migrated, and filled in bulk: executemany on
SQLite, COPY on PostgreSQL. The records' hashes are made up, since the figures never read
the chain (the report's verification then finds every record altered, which is what it
should say). Each command is run three times; the best and the worst wall time are printed
with the process's peak memory, and, for the per-category count, the alternatives to the
LIKE the stats use: json_each on SQLite, jsonb's ``?`` on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from globalupdates.consent.proof.records import EXPORT_FIELDS

OPTIONAL = ("functional", "analytics", "performance", "advertisement")
FIRST_DAY = datetime(2025, 1, 1)
DAYS = 365
COLUMNS = tuple(name for name in EXPORT_FIELDS if name != "id")  # the id is the database's
# How often readers do what, roughly as a news site sees it.
ACTIONS = (
    ("accept_all", 0.55),
    ("reject_all", 0.25),
    ("save", 0.12),
    ("withdrawal", 0.03),
    ("gpc_opt_out", 0.05),
)
RUNS = 3


def categories_for(action: str, gpc: bool, pick: random.Random) -> list[str]:
    if action == "accept_all":
        return ["necessary", *(key for key in OPTIONAL if not (gpc and key == "advertisement"))]
    if action in ("reject_all", "gpc_opt_out"):
        return ["necessary"]
    return ["necessary", *(key for key in OPTIONAL if pick.random() < 0.4)]


LANGUAGES = ("en", "de", "fr")


def fake_records(count: int, seed: int = 7) -> Iterator[tuple]:
    """Records spread evenly over a year, revision 2 from two thirds of the way on, made on
    the English, German and French pages about 6:2:2."""
    pick = random.Random(seed)
    actions = [name for name, _ in ACTIONS]
    weights = [weight for _, weight in ACTIONS]
    step = timedelta(days=DAYS) / count
    for number in range(count):
        action = pick.choices(actions, weights)[0]
        gpc = action == "gpc_opt_out" or pick.random() < 0.08
        yield (
            str(uuid.UUID(int=pick.getrandbits(128), version=4)),
            FIRST_DAY + step * number,
            action,
            json.dumps(categories_for(action, gpc, pick)),
            1 if number < count * 2 // 3 else 2,
            "a" * 64,
            gpc,
            f"{number - 1:064x}" if number else "0" * 64,
            "bench",
            f"{number:064x}",
            pick.choices(LANGUAGES, (6, 2, 2))[0],
        )


def sqlite_rows(count: int) -> Iterator[tuple]:
    """As SQLAlchemy stores them on SQLite: times as text, flags as 0 or 1."""
    for row in fake_records(count):
        moment = row[1].strftime("%Y-%m-%d %H:%M:%S.%f")
        yield (row[0], moment, *row[2:6], int(row[6]), *row[7:])


def fill_sqlite(app, count: int) -> None:
    from globalupdates.extensions import db

    insert = (
        f"INSERT INTO consent_record ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)})"
    )
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.executemany(insert, sqlite_rows(count))
            connection.commit()
            cursor.execute("ANALYZE")
        finally:
            connection.close()


def fill_postgres(url: str, count: int) -> None:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        copy = sql.SQL("COPY consent_record ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS)
        )
        with cursor.copy(copy) as load:
            for row in fake_records(count):
                load.write_row(row)
        connection.commit()
        connection.autocommit = True
        cursor.execute("VACUUM ANALYZE consent_record")


def make_app(database_url: str, folder: str):
    """The site on that database, migrated (with no article: CONTENT_DIR is empty)."""
    from globalupdates import create_app
    from globalupdates.prepare import prepare_site

    os.environ["FLASK_INSTANCE_PATH"] = folder
    app = create_app(
        {
            "SECRET_KEY": "stats-bench-not-for-production",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CONTENT_DIR": folder,
        }
    )
    prepare_site(app)
    return app


def timed(label: str, run: Callable[[], object]) -> None:
    """Wall time of ``RUNS`` runs, then one more run under tracemalloc for its peak memory."""
    spent = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        spent.append(time.perf_counter() - started)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 1024
    tracemalloc.stop()
    print(
        f"  {label:<52} best {min(spent):6.2f} s  worst {max(spent):6.2f} s  "
        f"Python peak {peak:,.0f} KiB"
    )


def command(app, *args: str) -> Callable[[], object]:
    runner = app.test_cli_runner()

    def run() -> object:
        result = runner.invoke(args=list(args))
        if result.exit_code != 0:
            raise SystemExit(f"{' '.join(args)} failed: {result.output}")
        return result

    return run


def raw_query(app, statement: str) -> Callable[[], object]:
    from globalupdates.extensions import db

    def run() -> object:
        with app.app_context(), db.engine.connect() as connection:
            return connection.execute(text(statement)).all()

    return run


def category_counts_sql(dialect: str) -> dict[str, str]:
    """The per-category count written three ways, to compare with what the stats run."""
    like = ", ".join(
        f"count(CASE WHEN CAST(categories AS TEXT) LIKE '%\"{key}\"%' THEN 1 END)"
        for key in OPTIONAL
    )
    by_revision = "FROM consent_record GROUP BY revision"
    forms = {"LIKE on the JSON text (used)": f"SELECT revision, {like} {by_revision}"}
    if dialect == "sqlite":
        exists = ", ".join(
            "count(CASE WHEN EXISTS (SELECT 1 FROM json_each(consent_record.categories) "
            f"WHERE value = '{key}') THEN 1 END)"
            for key in OPTIONAL
        )
        forms["json_each, EXISTS per category"] = f"SELECT revision, {exists} {by_revision}"
        forms["json_each, one join for all"] = (
            "SELECT revision, each.value, count(*) FROM consent_record, "
            "json_each(consent_record.categories) AS each GROUP BY revision, each.value"
        )
    else:
        jsonb = ", ".join(
            f"count(CASE WHEN categories::jsonb ? '{key}' THEN 1 END)" for key in OPTIONAL
        )
        forms["jsonb ? per category"] = (
            f"SELECT revision, {jsonb} FROM consent_record GROUP BY revision"
        )
        forms["jsonb_array_elements_text, one join"] = (
            "SELECT revision, each, count(*) FROM consent_record, "
            "jsonb_array_elements_text(categories::jsonb) AS each GROUP BY revision, each"
        )
    return forms


def bench(app, dialect: str, with_report: bool, folder: str) -> None:
    for args in (
        (),
        ("--by", "day"),
        ("--by", "week"),
        ("--by", "month", "--format", "json"),
        ("--since", "2025-07-01", "--until", "2025-08-01", "--by", "day"),
    ):
        timed("stats " + " ".join(args), command(app, "consent", "stats", *args))
    for label, statement in category_counts_sql(dialect).items():
        timed(f"categories: {label}", raw_query(app, statement))
    if with_report:
        output = os.path.join(folder, "report.html")
        timed("report --by week", command(app, "consent", "report", "-o", output, "--by", "week"))


def run_sqlite(count: int, with_report: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="gu-stats-bench-") as folder:
        app = make_app(f"sqlite:///{folder}/bench.sqlite3", folder)
        started = time.perf_counter()
        fill_sqlite(app, count)
        print(f"SQLite: {count:,} records inserted in {time.perf_counter() - started:.1f} s")
        bench(app, "sqlite", with_report, folder)


def run_postgres(admin_url: str, count: int, with_report: bool) -> None:
    admin = make_url(admin_url)
    name = f"gu_stats_bench_{os.getpid()}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="gu-stats-bench-") as folder:
            app = make_app(url, folder)
            started = time.perf_counter()
            fill_postgres(url, count)
            print(f"PostgreSQL: {count:,} records copied in {time.perf_counter() - started:.1f} s")
            bench(app, "postgresql", with_report, folder)
            from globalupdates.extensions import db

            with app.app_context():
                db.engine.dispose()
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres", metavar="URL", help="Also bench PostgreSQL, in a database made beside URL's."
    )
    parser.add_argument("--no-sqlite", action="store_true", help="Bench PostgreSQL only.")
    parser.add_argument(
        "--report", action="store_true", help="Also time `consent report` (verifies the chain)."
    )
    args = parser.parse_args()
    if not args.no_sqlite:
        run_sqlite(args.records, args.report)
    if args.postgres:
        run_postgres(args.postgres, args.records, args.report)


if __name__ == "__main__":
    main()
