"""deploy/nginx.conf as it is, run from a throwaway prefix, for the tests and the bench.

Only the three lines the file marks for the operator change: the address nginx listens on,
the address of gunicorn, and the folder whose ``static/`` nginx serves. Each must appear
exactly once, so a change to the deployed file that moves them breaks loudly here.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from globalupdates.config import PROJECT_ROOT

ROOT = PROJECT_ROOT
DEPLOYED_CONF = ROOT / "deploy" / "nginx.conf"
LISTEN_LINE = "listen 127.0.0.1:8080;"
UPSTREAM_LINE = "server 127.0.0.1:8000;"
STATIC_ROOT_LINE = "root /srv/globalupdates;"
CACHE_FIELD = re.compile(r" cache=(\S*) ")
START_SECONDS = 15


def nginx_conf_for(listen_port: int, upstream_port: int, site_root: Path) -> str:
    """deploy/nginx.conf with the operator's three lines pointed at this machine."""
    text = DEPLOYED_CONF.read_text()
    replacements = {
        LISTEN_LINE: f"listen 127.0.0.1:{listen_port};",
        UPSTREAM_LINE: f"server 127.0.0.1:{upstream_port};",
        STATIC_ROOT_LINE: f"root {site_root};",
    }
    for old, new in replacements.items():
        count = text.count(old)
        if count != 1:
            raise ValueError(f"deploy/nginx.conf has {old!r} {count} times, not once")
        text = text.replace(old, new)
    return text


def nginx_binary() -> str | None:
    """Debian's nginx, also when /usr/sbin is not on this user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DeployedNginx:
    port: int
    prefix: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop gracefully (SIGQUIT), which also flushes the buffered access log."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def error_log(self) -> str:
        logs = [self.prefix / "logs" / name for name in ("stderr.log", "error.log")]
        return "".join(path.read_text(errors="replace") for path in logs if path.exists())

    def cache_statuses(self) -> Counter[str]:
        """How often each $upstream_cache_status was logged ("-" when there was none).

        The access log is buffered: read it after nginx has stopped, or expect it to lag.
        """
        path = self.prefix / "logs" / "access.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return Counter(
            (match.group(1) or "-") if match else "?"
            for match in map(CACHE_FIELD.search, text.splitlines())
        )


def wait_until_listening(nginx: DeployedNginx, timeout: float = START_SECONDS) -> None:
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
def deployed_nginx(upstream_port: int, site_root: Path = ROOT) -> Iterator[DeployedNginx]:
    """Run deploy/nginx.conf in the foreground in front of ``upstream_port``, then stop it.

    ``site_root`` is the folder holding ``static/`` (the checkout by default); it and its
    parents must be readable by nginx's workers. The prefix is removed afterwards, so read
    ``cache_statuses()`` inside the ``with`` block after ``stop()``, or not at all.
    """
    prefix = make_prefix()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf_for(port, upstream_port, site_root))
    with open(prefix / "logs" / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            nginx_command(prefix, conf, "-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    nginx = DeployedNginx(port=port, prefix=prefix, process=process)
    try:
        wait_until_listening(nginx)
        yield nginx
    finally:
        nginx.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def check_config(upstream_port: int, site_root: Path = ROOT) -> tuple[int, str]:
    """``nginx -t`` on the deployed file in a fresh prefix: its exit status and its words."""
    prefix = make_prefix()
    try:
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf_for(free_port(), upstream_port, site_root))
        check = subprocess.run(nginx_command(prefix, conf, "-t"), capture_output=True, text=True)
        return check.returncode, check.stdout + check.stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
