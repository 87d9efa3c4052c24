"""The one way the tests and the bench start nginx: in the foreground, from a throwaway prefix,
on a free loopback port, in a process group of its own.

``deployed_nginx`` runs deploy/nginx.conf as it is. Only the four lines the file marks for
the operator change: the address nginx listens on, the address of gunicorn, the folder whose
``static/`` nginx serves, and the GeoIP2 database (the tests' own, ``geoip``). Each must
appear exactly once, so a change to the deployed file that moves them breaks loudly here.
``running_nginx`` takes any configuration (the bench serves a page from a file with one).
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from globalupdates.config import PROJECT_ROOT
from tests.support.geoip import geoip_database
from tests.support.servers import free_port, stop_process_group

DEPLOYED_CONF = PROJECT_ROOT / "deploy" / "nginx.conf"
LISTEN_LINE = "listen 127.0.0.1:8080;"
UPSTREAM_LINE = "server 127.0.0.1:8000;"
STATIC_ROOT_LINE = "root /srv/globalupdates;"
GEOIP_LINE = "geoip2 /var/lib/GeoIP/GeoLite2-City.mmdb {"
CACHE_FIELD = re.compile(r" cache=(\S*) ")
START_SECONDS = 15
STOP_SECONDS = 20

# Makes the configuration nginx runs with from the port it is to listen on and its prefix.
Configuration = Callable[[int, Path], str]


def nginx_conf_for(
    listen_port: int,
    upstream_port: int,
    site_root: Path,
    changes: dict[str, str] | None = None,
) -> str:
    """deploy/nginx.conf with the operator's three lines pointed at this machine, and any
    other ``changes`` (text, each found once, and what replaces it: the bench weighs parts of
    the file by leaving them out)."""
    return with_operator_lines(
        DEPLOYED_CONF,
        {
            LISTEN_LINE: f"listen 127.0.0.1:{listen_port};",
            UPSTREAM_LINE: f"server 127.0.0.1:{upstream_port};",
            STATIC_ROOT_LINE: f"root {site_root};",
            **(changes or {}),
            GEOIP_LINE: f"geoip2 {geoip_database()} {{",
        },
    )


def with_operator_lines(conf: Path, replacements: dict[str, str]) -> str:
    """The text of the deployed file ``conf`` with each operator's line replaced; each must
    be there exactly once."""
    text = conf.read_text()
    for old, new in replacements.items():
        count = text.count(old)
        if count != 1:
            raise ValueError(f"deploy/{conf.name} has {old!r} {count} times, not once")
        text = text.replace(old, new)
    return text


def nginx_binary() -> str | None:
    """Debian's nginx, also when /usr/sbin is not on this user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


@dataclass
class Nginx:
    port: int
    prefix: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop gracefully (SIGQUIT), which also flushes the buffered access log."""
        if self.process.returncode is None:
            stop_process_group(self.process, signal.SIGQUIT, STOP_SECONDS)

    def error_log(self) -> str:
        logs = [self.prefix / "logs" / name for name in ("stderr.log", "error.log")]
        return "".join(path.read_text(errors="replace") for path in logs if path.exists())

    def access_log_lines(self) -> list[str]:
        """The access log's lines. It is buffered: read it after nginx has stopped, or expect
        it to lag."""
        path = self.prefix / "logs" / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def cache_statuses(self, client: str | None = None) -> Counter[str]:
        """How often each $upstream_cache_status was logged ("-" when there was none), for
        every request or only for those from the network ``client`` (each line of
        deploy/nginx.conf's log opens with the client's address cut to its network, e.g.
        127.0.0.0 for 127.0.0.1).

        The access log is buffered: read it after nginx has stopped, or expect it to lag.
        """
        lines = self.access_log_lines()
        if client is not None:
            lines = [line for line in lines if line.split(" ", 1)[0] == client]
        return Counter(
            (match.group(1) or "-") if match else "?" for match in map(CACHE_FIELD.search, lines)
        )


def wait_until_listening(nginx: Nginx, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nginx.process.poll() is not None:
            raise RuntimeError(
                f"nginx exited with {nginx.process.returncode}:\n{nginx.error_log()}"
            )
        try:
            socket.create_connection(("127.0.0.1", nginx.port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen within {timeout} s:\n{nginx.error_log()}")


def nginx_command(prefix: Path, conf: Path, *extra: str) -> list[str]:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    return [binary, "-p", f"{prefix}/", "-c", str(conf), *extra]


def make_prefix() -> Path:
    """A fresh prefix that nginx's workers can use even when they run as ``nobody``."""
    prefix = Path(tempfile.mkdtemp(prefix="gu-nginx-"))
    (prefix / "logs").mkdir()
    prefix.chmod(0o755)
    return prefix


@contextmanager
def running_nginx(configuration: Configuration) -> Iterator[Nginx]:
    """nginx in the foreground with ``configuration(port, prefix)``, stopped at the end.

    The prefix is removed afterwards, so read ``cache_statuses()`` inside the ``with`` block
    after ``stop()``, or not at all.
    """
    prefix = make_prefix()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(configuration(port, prefix))
    with open(prefix / "logs" / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            nginx_command(prefix, conf, "-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    nginx = Nginx(port=port, prefix=prefix, process=process)
    try:
        wait_until_listening(nginx)
        yield nginx
    finally:
        nginx.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def deployed_nginx(
    upstream_port: int,
    site_root: Path = PROJECT_ROOT,
    changes: dict[str, str] | None = None,
) -> AbstractContextManager[Nginx]:
    """Run deploy/nginx.conf in front of ``upstream_port``.

    ``site_root`` is the folder holding ``static/`` (the checkout by default); it and its
    parents must be readable by nginx's workers. ``changes`` as for ``nginx_conf_for``.
    """
    return running_nginx(
        lambda port, _prefix: nginx_conf_for(port, upstream_port, site_root, changes)
    )


def check_config(upstream_port: int, site_root: Path = PROJECT_ROOT) -> tuple[int, str]:
    """``nginx -t`` on the deployed file in a fresh prefix: its exit status and its words."""
    return check_configuration(nginx_conf_for(free_port(), upstream_port, site_root))


def check_configuration(text: str) -> tuple[int, str]:
    """``nginx -t`` on a configuration ``text`` in a fresh prefix."""
    prefix = make_prefix()
    try:
        conf = prefix / "nginx.conf"
        conf.write_text(text)
        check = subprocess.run(nginx_command(prefix, conf, "-t"), capture_output=True, text=True)
        return check.returncode, check.stdout + check.stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
