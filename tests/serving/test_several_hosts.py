"""Two hosts as they run: two sites, each under gunicorn with an instance folder, a process
group and a port of its own, on one PostgreSQL, with the page cache in Redis, behind the real
nginx running deploy/nginx-hosts.conf (only the operator's lines pointed at this machine).

The hosts share what docs/operations.md says several hosts must share: the secret key and the
proof keys file's contents. Readers choose through either host and through nginx, and see one
history from each; an article edited from one host's command line reaches readers on both within
the documented bound; one host killed with SIGKILL under load costs no GET, nginx sending its
readers to the other; every choice answered 303 is recorded, and ``flask consent verify`` passes
on the chain both hosts wrote. A host gone silent costs a reader the file's connect timeout.

PostgreSQL is what several hosts share, so the servers' tests run only on it, as every
PostgreSQL test of the suite does when ``TEST_DATABASE_URL`` names a server (CI sets it; a
server that is named and cannot be reached fails). nginx and Redis are required: without them
these fail.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from globalupdates.config import PROJECT_ROOT
from globalupdates.consent.proof.proof_keys import KEY_FILE_HEADER, KEY_FILE_NAME, key_line, new_key
from tests.serving.test_load import stored_consents
from tests.support.articles import article_markdown
from tests.support.consent import SAME_ORIGIN, checked_boxes
from tests.support.databases import PostgresTestDatabase
from tests.support.gunicorn_server import SECRET_KEY, Server, running_gunicorn, server_environment
from tests.support.load_client import consent_id_in, session_reader
from tests.support.nginx_hosts import HOSTS_CONF, hosts_conf_for, hosts_nginx, several_hosts_conf
from tests.support.nginx_server import DEPLOYED_CONF, check_configuration, nginx_binary
from tests.support.pages import ARTICLE
from tests.support.proxied_site import (
    MISSING_NGINX,
    PROXY_FIX,
    RAISED_LIMITS,
    Answer,
    Site,
    cookie_header,
    static_root_for_nginx,
)
from tests.support.servers import free_port, silent_port

SESSIONS = session_reader(SECRET_KEY)

REDIS_URL = "redis://127.0.0.1:6379/0"
# Shorter than the defaults (10 s and 30 s), so that the documented bound on an edit, the
# content check plus the time nginx keeps a page, is seconds here.
CONTENT_CHECK_SECONDS = 2
SHARED_PAGE_MAX_AGE = 3
EDIT_BOUND = CONTENT_CHECK_SECONDS + SHARED_PAGE_MAX_AGE
# What polling every 0.2 s and a busy machine may add to the bound.
EDIT_SLACK = 1.5
CLI_SECONDS = 60

READERS = 12
LOAD_GETS = 300
LOAD_CHOICES = 40
LOAD_SECONDS = 2.0
LOAD_THREADS = 8
KILL_AFTER = 0.4  # of the requests sent when host A dies
# The hosts file's connect timeout (1 s) and a page; nginx.conf's 5 s would not do.
SILENT_HOST_SECONDS = 2.5


# ---- the shipped file ----------------------------------------------------------------------


def test_the_hosts_file_is_nginx_conf_with_only_the_several_hosts_changes():
    """deploy/nginx-hosts.conf says what deploy/nginx.conf says, except where it is marked."""
    written = several_hosts_conf(DEPLOYED_CONF.read_text())
    assert HOSTS_CONF.read_text() == written, (
        "deploy/nginx-hosts.conf differs from deploy/nginx.conf beyond its several-hosts "
        "changes: run `make nginx-hosts` to write it again"
    )


def test_each_difference_from_the_one_host_file_is_explained_where_it_is():
    one_host = DEPLOYED_CONF.read_text().splitlines()
    hosts = HOSTS_CONF.read_text().splitlines()
    changed = [line for line in hosts if line not in one_host and not line.lstrip().startswith("#")]
    assert changed, "the hosts file should differ from nginx.conf"
    for line in changed:
        above = hosts[: hosts.index(line)]
        comments = [text for text in above[-12:] if text.lstrip().startswith("#")]
        assert any("Several hosts" in text for text in comments), f"unexplained: {line!r}"


def test_the_hosts_file_retries_elsewhere_and_gives_up_on_a_silent_host_quickly():
    text = HOSTS_CONF.read_text()
    assert "proxy_next_upstream error timeout http_502 http_504;" in text
    assert "proxy_connect_timeout 1s;" in text
    assert "non_idempotent" not in text, "a choice sent to one host must never go to another"
    assert text.count("max_fails=1 fail_timeout=10s;") == 2


@pytest.mark.slow
def test_the_hosts_file_passes_nginx_t():
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    status, words = check_configuration(
        hosts_conf_for(free_port(), [free_port(), free_port()], PROJECT_ROOT)
    )
    assert status == 0, words


@pytest.fixture(scope="module")
def site_root() -> Iterator[Path]:
    with static_root_for_nginx() as root:
        yield root


@pytest.mark.slow
def test_a_silent_host_costs_a_reader_no_more_than_the_connect_timeout(
    migrated_sqlite: Path, site_root: Path, tmp_path: Path
):
    """A host that neither answers nor refuses (unplugged, cut off by the network) is given up
    on after proxy_connect_timeout, and the request goes to the other host. Only nginx's side
    matters here, so the host that answers runs on SQLite."""
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    database = tmp_path / "site.sqlite3"
    shutil.copyfile(migrated_sqlite, database)
    with (
        silent_port() as silent,
        running_gunicorn(f"sqlite:///{database}", tmp_path, PROXY_FIX) as server,
        hosts_nginx([silent, server.port], site_root) as nginx,
    ):
        site = Site(nginx.port, server.port)
        took = []
        for number in range(8):
            started = time.monotonic()
            answer = site.get(f"{ARTICLE}?silent-host={number}", Accept="text/html")
            took.append(time.monotonic() - started)
            assert answer.status == 200, answer.text()[:300]
    assert max(took) >= 0.9, f"no request was sent to the silent host first: {took}"
    assert max(took) < SILENT_HOST_SECONDS, took


# ---- two hosts ------------------------------------------------------------------------------


@dataclass
class Host:
    """One host: its gunicorn, its instance folder, and its command line."""

    name: str
    folder: Path
    server: Server
    database_uri: str
    settings: dict[str, str]

    @property
    def site(self) -> Site:
        """The host reached directly, past nginx (a client of its own port)."""
        return Site(port=self.server.port, app_port=self.server.port)

    def flask(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """``flask --app wsgi ...`` as the operator runs it on this host."""
        environment = server_environment(
            self.database_uri, self.folder, self.server.port, self.settings
        )
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *arguments],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=CLI_SECONDS,
        )

    def kill(self) -> None:
        """The host dies: SIGKILL to gunicorn's master and every worker at once."""
        os.killpg(self.server.process.pid, signal.SIGKILL)
        self.server.process.wait(timeout=10)


@dataclass
class TwoHosts:
    hosts: tuple[Host, Host]
    nginx: Site
    database_uri: str
    cache_prefix: str


def write_proof_keys(folder: Path, text: str) -> None:
    instance = folder / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / KEY_FILE_NAME
    path.write_text(text, encoding="ascii")
    path.chmod(0o600)


def cached_page_keys(prefix: str, *, forget: bool = False) -> list[bytes]:
    """The page cache's keys in Redis under ``prefix``; with ``forget``, deleted as well."""
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if forget and keys:
            client.delete(*keys)
    return keys


@pytest.fixture
def two_hosts(
    migrated_postgres: PostgresTestDatabase, site_root: Path, tmp_path: Path
) -> Iterator[TwoHosts]:
    """Host A and host B on this run's PostgreSQL database, behind deploy/nginx-hosts.conf."""
    if nginx_binary() is None:
        pytest.fail(MISSING_NGINX)
    migrated_postgres.empty_tables()
    database_uri = migrated_postgres.sqlalchemy_uri
    cache_prefix = f"gu-hosts-{uuid.uuid4().hex[:12]}:"
    settings = {
        "WEB_CONCURRENCY": "2",
        **PROXY_FIX,
        **RAISED_LIMITS,
        "FLASK_CACHE_TYPE": "RedisCache",
        "FLASK_CACHE_REDIS_URL": REDIS_URL,
        "FLASK_CACHE_KEY_PREFIX": cache_prefix,
        "FLASK_CONTENT_CHECK_SECONDS": str(CONTENT_CHECK_SECONDS),
        "FLASK_SHARED_PAGE_MAX_AGE": str(SHARED_PAGE_MAX_AGE),
    }
    proof_keys = KEY_FILE_HEADER + key_line(new_key("k1"))
    hosts: list[Host] = []
    try:
        with ExitStack() as stack:
            # One after the other, as the docs say: the first prepares the shared database.
            for name in ("a", "b"):
                folder = tmp_path / f"host-{name}"
                write_proof_keys(folder, proof_keys)
                server = stack.enter_context(running_gunicorn(database_uri, folder, settings))
                hosts.append(Host(name, folder, server, database_uri, settings))
            ports = [host.server.port for host in hosts]
            nginx = stack.enter_context(hosts_nginx(ports, site_root))
            yield TwoHosts(
                (hosts[0], hosts[1]), Site(nginx.port, ports[0]), database_uri, cache_prefix
            )
    finally:
        cached_page_keys(cache_prefix, forget=True)


# ---- readers --------------------------------------------------------------------------------


@dataclass
class Reader:
    """A browser's cookie jar for the site, whichever host answers."""

    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def session(self) -> str:
        return self.cookies["gu_session"]

    @property
    def consent_id(self) -> str:
        return consent_id_in(self.session, SESSIONS)

    def keep(self, answer: Answer) -> None:
        for name, value in answer.cookies().items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)

    def choose(self, site: Site, action: str, categories: tuple[str, ...] = ()) -> Answer:
        answer = site.choose(action, self.cookies.get("gu_session"), categories, **SAME_ORIGIN)
        assert answer.status == 303, (site.port, answer.status, answer.text()[:300])
        self.keep(answer)
        return answer

    def get(self, site: Site, path: str, accept: str = "text/html") -> Answer:
        return site.get(path, Accept=accept, Cookie=cookie_header(self.cookies))

    def history(self, site: Site) -> dict:
        answer = self.get(site, "/consent/history", accept="application/json")
        assert answer.status == 200, answer.text()[:300]
        return json.loads(answer.body)


def flask_succeeds(host: Host, *arguments: str) -> str:
    done = host.flask(*arguments)
    assert done.returncode == 0, f"flask {' '.join(arguments)} on host {host.name}:\n" + (
        done.stdout + done.stderr
    )
    return done.stdout


def assert_chain_verifies(host: Host, records: int) -> None:
    output = flask_succeeds(host, "consent", "verify")
    assert f"Chain intact: {records} record(s) verified." in output, output


def recorded_choices(database_uri: str) -> int:
    return sum(stored_consents(database_uri).values())


@pytest.mark.postgresql
@pytest.mark.slow
def test_readers_see_one_site_through_either_host(two_hosts: TwoHosts):
    host_a, host_b = two_hosts.hosts
    readers = [Reader() for _ in range(READERS // 2)]
    for number, reader in enumerate(readers):
        first, second = (host_a, host_b) if number % 2 == 0 else (host_b, host_a)
        reader.choose(two_hosts.nginx, "reject_all")
        reader.choose(first.site, "save", ("analytics",))
        reader.choose(second.site, "accept_all")

    for reader in readers:
        seen = [reader.history(site) for site in (host_a.site, host_b.site, two_hosts.nginx)]
        assert seen[0] == seen[1] == seen[2]
        assert seen[0]["consent_id"] == reader.consent_id
        assert [entry["action"] for entry in seen[0]["records"]] == [  # newest first
            "accept_all",
            "save",
            "reject_all",
        ]
        preferences = [reader.get(host.site, "/consent").text() for host in (host_a, host_b)]
        assert checked_boxes(preferences[0]) == checked_boxes(preferences[1])
        assert reader.consent_id in preferences[0] and reader.consent_id in preferences[1]
    assert stored_consents(two_hosts.database_uri) == {reader.consent_id: 3 for reader in readers}
    assert cached_page_keys(two_hosts.cache_prefix), "the page cache is not in Redis"

    assert_an_edit_reaches_every_reader_within_the_bound(two_hosts, readers[0])
    assert_chain_verifies(host_b, 3 * len(readers))


STORY = "two-hosts-story"


def write_story(folder: Path, headline: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{STORY}.md"
    path.write_text(
        article_markdown(STORY, headline=headline, published="2026-11-30T09:00:00Z"),
        encoding="utf-8",
    )
    return path


def assert_an_edit_reaches_every_reader_within_the_bound(two_hosts: TwoHosts, reader: Reader):
    """The story is imported from host B's command line and corrected from host A's; a first
    visitor and a returning reader through nginx, and the reader on each host directly, see
    the correction within the content check plus the time nginx keeps a page."""
    host_a, host_b = two_hosts.hosts
    path = f"/articles/{STORY}"
    content = host_a.folder.parent / "content"
    views = {
        "first visit through nginx": lambda: two_hosts.nginx.get(path, Accept="text/html"),
        "returning reader through nginx": lambda: reader.get(two_hosts.nginx, path),
        "reader on host A": lambda: reader.get(host_a.site, path),
        "reader on host B": lambda: reader.get(host_b.site, path),
    }
    flask_succeeds(host_b, "articles", "import", str(write_story(content, "The first headline")))
    seen_within(views, "The first headline", EDIT_BOUND + EDIT_SLACK)
    # nginx keeps both pages (one may expire between two requests, not between three): the
    # correction has to wait for them to go.
    for name in ("first visit through nginx", "returning reader through nginx"):
        assert "HIT" in {views[name]().cache_status for _ in range(3)}, name

    flask_succeeds(host_a, "articles", "import", str(write_story(content, "The corrected one")))
    took = seen_within(views, "The corrected one", EDIT_BOUND + EDIT_SLACK)
    assert max(took.values()) <= EDIT_BOUND + EDIT_SLACK, took


def seen_within(views: dict, headline: str, limit: float) -> dict[str, float]:
    """How long each view took to show ``headline``; fails once ``limit`` seconds pass."""
    started = time.monotonic()
    took: dict[str, float] = {}
    while len(took) < len(views):
        for name, view in views.items():
            if name not in took:
                answer = view()
                if answer.status == 200 and headline in answer.text():
                    took[name] = time.monotonic() - started
        waited = time.monotonic() - started
        assert waited <= limit, f"after {waited:.1f} s only {sorted(took)} show {headline!r}"
        time.sleep(0.2)
    return took


# ---- a host dies under load -----------------------------------------------------------------


@dataclass
class Outcome:
    """What one request of the load got: its status (None: no answer) and when it ended."""

    kind: str
    status: int | None
    ended: float
    cache_status: str | None = None
    consent_id: str | None = None
    error: str = ""


def get_page(site: Site, number: int) -> Outcome:
    """A first visit to a URL nobody asked for before: nginx has nothing to serve for it,
    fresh or stale, so each one reaches a host."""
    return timed("GET", lambda: site.get(f"{ARTICLE}?load={number}", Accept="text/html"))


def get_history(site: Site, reader: Reader) -> Outcome:
    """A reader's own history: never cached, so it reaches a host every time."""
    return timed("GET", lambda: reader.get(site, "/consent/history", accept="application/json"))


def post_choice(site: Site, reader: Reader, action: str) -> Outcome:
    outcome = timed("POST", lambda: site.choose(action, reader.session, (), **SAME_ORIGIN))
    outcome.consent_id = reader.consent_id
    return outcome


def timed(kind: str, send) -> Outcome:
    try:
        answer = send()
    except (OSError, http.client.HTTPException) as error:
        return Outcome(kind, None, time.monotonic(), error=repr(error))
    return Outcome(kind, answer.status, time.monotonic(), answer.cache_status)


def load_plan(site: Site, readers: list[Reader]) -> list:
    """LOAD_GETS GETs and LOAD_CHOICES choices, interleaved."""
    total = LOAD_GETS + LOAD_CHOICES
    every = total // LOAD_CHOICES
    plan = []
    gets = 0
    for number in range(total):
        reader = readers[number % len(readers)]
        if number % every == every - 1 and len(plan) - gets < LOAD_CHOICES:
            action = ("reject_all", "accept_all")[number % 2]
            plan.append(lambda r=reader, a=action: post_choice(site, r, a))
        else:
            gets += 1
            if gets % 2:
                plan.append(lambda n=number: get_page(site, n))
            else:
                plan.append(lambda r=reader: get_history(site, r))
    return plan


def run_load_killing(host: Host, plan: list) -> tuple[list[Outcome], float]:
    """Send the plan over LOAD_SECONDS from a pool of threads and kill ``host`` once
    KILL_AFTER of it is sent; the outcomes and when the host died."""
    pause = LOAD_SECONDS / len(plan)
    kill_at = int(len(plan) * KILL_AFTER)
    killed_at = 0.0
    started = time.monotonic()
    with ThreadPoolExecutor(LOAD_THREADS) as pool:
        futures = []
        for number, request in enumerate(plan):
            time.sleep(max(0.0, started + number * pause - time.monotonic()))
            if number == kill_at:
                host.kill()
                killed_at = time.monotonic()
            futures.append(pool.submit(request))
        outcomes = [future.result() for future in futures]
    return outcomes, killed_at


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.postgresql
@pytest.mark.slow
def test_a_host_killed_under_load_loses_no_get_and_no_answered_choice(two_hosts: TwoHosts):
    host_a, host_b = two_hosts.hosts
    readers = [Reader() for _ in range(READERS)]
    for number, reader in enumerate(readers):
        reader.choose(two_hosts.hosts[number % 2].site, "accept_all")  # each host signs some

    outcomes, killed_at = run_load_killing(host_a, load_plan(two_hosts.nginx, readers))

    assert refuses_connections(host_a.server.port), "host A should be dead"
    gets = [outcome for outcome in outcomes if outcome.kind == "GET"]
    failed = [outcome for outcome in gets if outcome.status != 200]
    assert failed == [], f"{len(failed)} of {len(gets)} GETs failed: {failed[:5]}"
    assert sum(1 for outcome in gets if outcome.ended > killed_at) >= LOAD_GETS // 2
    assert "STALE" not in Counter(outcome.cache_status for outcome in gets)

    choices = [outcome for outcome in outcomes if outcome.kind == "POST"]
    assert len(choices) == LOAD_CHOICES
    # A choice that had reached host A when it died has no answer but a 502 from nginx, which
    # resends no POST; it may or may not have been stored. Every 303 must have been.
    statuses = Counter(outcome.status for outcome in choices)
    assert set(statuses) <= {303, 502}, statuses
    answered = Counter(outcome.consent_id for outcome in choices if outcome.status == 303)
    unanswered = Counter(outcome.consent_id for outcome in choices if outcome.status != 303)
    stored = stored_consents(two_hosts.database_uri)
    for reader in readers:
        made = 1 + answered[reader.consent_id]
        assert made <= stored[reader.consent_id] <= made + unanswered[reader.consent_id]

    records = recorded_choices(two_hosts.database_uri)
    assert_chain_verifies(host_b, records)
    assert_chain_verifies(host_a, records)  # its folder outlives it, as its disk would
