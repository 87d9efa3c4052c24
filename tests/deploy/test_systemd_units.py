"""deploy/'s systemd units: systemd accepts them, and the site runs in the sandbox they set.

systemd is not PID 1 here, so the units cannot be started as such. ``systemd-analyze verify``
checks them as systemd would load them; the site then runs with the service's own command
line, environment and settings file, in the file system view its sandbox gives it
(tests/support/systemd_sandbox.py: read-only but for its state folder, private /tmp, hidden
home folders, a user other than root, no new privileges, the listening socket passed as the
socket unit passes it), behind nginx run as the nginx unit runs it, in its own sandbox.
What is not reproduced: the seccomp filter, the capability bounding set and the other
kernel-level settings, which only ``verify`` checks.
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

from globalupdates.config import PROJECT_ROOT
from tests.support.geoip import geoip_database
from tests.support.nginx_server import nginx_conf_for
from tests.support.servers import free_port, stop_process_group
from tests.support.systemd_sandbox import STATE_ROOT, sandboxed_command

DEPLOY = PROJECT_ROOT / "deploy"
SERVICE = DEPLOY / "globalupdates.service"
SOCKET = DEPLOY / "globalupdates.socket"
NGINX_SERVICE = DEPLOY / "globalupdates-nginx.service"
NGINX_CONF_INSTALLED = "/etc/globalupdates/nginx.conf"  # where the operator's copy goes
ENVIRONMENT_EXAMPLE = DEPLOY / "globalupdates.env.example"
SERVICE_USER = (65534, 65534)  # nobody: any user but root, as User=globalupdates is
READY_SECONDS = 90
STOP_SECONDS = 30


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` to every value given for it, in order (systemd keys may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def the(settings: dict[str, list[str]], key: str) -> str:
    values = settings.get(key, [])
    assert len(values) == 1, f"{key} is given {len(values)} times"
    return values[0]


def environment_file(path: Path) -> dict[str, str]:
    pairs = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def installed_copies(folder: Path, gunicorn: str) -> tuple[Path, Path]:
    """The two units as an operator installs them, the service's ExecStart pointing at
    ``gunicorn`` (verify wants the program to exist)."""
    folder.mkdir(parents=True, exist_ok=True)
    service = folder / SERVICE.name
    exec_start = the(unit_settings(SERVICE), "Service.ExecStart")
    program = exec_start.split()[0]
    service.write_text(SERVICE.read_text().replace(program, gunicorn))
    socket_unit = folder / SOCKET.name
    shutil.copyfile(SOCKET, socket_unit)
    return service, socket_unit


def this_gunicorn() -> str:
    return str(Path(sys.executable).parent / "gunicorn")


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    service, socket_unit = installed_copies(tmp_path, this_gunicorn())
    nginx_unit = tmp_path / NGINX_SERVICE.name
    shutil.copyfile(NGINX_SERVICE, nginx_unit)
    result = verify(service, socket_unit, nginx_unit)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_is_a_real_check(tmp_path):
    """The check above would catch a unit systemd refuses: a missing program, a bad key."""
    service, socket_unit = installed_copies(tmp_path / "missing", "/nonexistent/gunicorn")
    assert verify(service, socket_unit).returncode != 0
    service, socket_unit = installed_copies(tmp_path / "typo", this_gunicorn())
    service.write_text(service.read_text().replace("ProtectSystem=", "ProtectSytsem="))
    assert "ProtectSytsem" in verify(service, socket_unit).stderr


def test_the_service_sandboxes_and_reloads_as_documented():
    service = unit_settings(SERVICE)
    assert the(service, "Service.User") == "globalupdates"
    assert the(service, "Service.NoNewPrivileges") == "yes"
    assert the(service, "Service.ProtectSystem") == "strict"
    assert the(service, "Service.PrivateTmp") == "yes"
    assert the(service, "Service.ProtectHome") == "yes"
    assert the(service, "Service.StateDirectory") == "globalupdates"
    assert "FLASK_INSTANCE_PATH=%S/globalupdates" in service["Service.Environment"]
    assert the(service, "Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert the(service, "Service.Type") == "notify"
    assert the(service, "Unit.Requires") == SOCKET.name
    assert the(unit_settings(SOCKET), "Socket.ListenStream") == "127.0.0.1:8000"
    nginx = unit_settings(NGINX_SERVICE)
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert the(nginx, f"Service.{key}") == "yes", key
    assert the(nginx, "Service.ProtectSystem") == "strict"
    assert the(nginx, "Service.CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
    assert f"-c {NGINX_CONF_INSTALLED}" in the(nginx, "Service.ExecStart")


def test_every_setting_of_the_environment_example_is_one_the_site_reads():
    """Each name, set or commented out, is a documented site setting (docs/configuration.md,
    which tests/test_docs.py holds to the code) or one gunicorn.conf.py reads."""
    documented = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    gunicorn_settings = (PROJECT_ROOT / "gunicorn.conf.py").read_text()
    names = [
        line.lstrip("#").partition("=")[0]
        for line in ENVIRONMENT_EXAMPLE.read_text().splitlines()
        if line.lstrip("#")[:1].isupper() and "=" in line and " " not in line.partition("=")[0]
    ]
    assert "FLASK_SECRET_KEY" in names
    for name in names:
        if name.startswith("FLASK_"):
            assert f"`{name}`" in documented, name
        else:
            assert f'"{name}"' in gunicorn_settings, name


def service_environment(service: dict[str, list[str]]) -> dict[str, str]:
    """What systemd gives the service: the settings file, then the unit's Environment=."""
    environment = environment_file(ENVIRONMENT_EXAMPLE)
    for assignment in service["Service.Environment"]:
        name, _, value = assignment.partition("=")
        environment[name] = value.replace("%S", STATE_ROOT)
    return environment


def request(port: int, method: str, path: str, body: str = "", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        host = {"Host": f"{HOST}:{port}"}  # as a browser that reached this port sends it
        conn.request(method, path, body=body or None, headers={**host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


HOST = "news.example.org"  # the example's FLASK_TRUSTED_HOSTS


def wait_for_ready(notify: socket.socket, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for gunicorn's READY=1 on the notification socket, as Type=notify does."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the service exited:\n{log.read_text()}"
        try:
            if b"READY=1" in notify.recv(4096):
                return
        except TimeoutError:
            continue
    raise AssertionError(f"no READY=1 within {READY_SECONDS} s:\n{log.read_text()}")


@contextmanager
def service_running(
    listener: socket.socket, state_root: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    service = unit_settings(SERVICE)
    notify_name = f"@globalupdates-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind("\0" + notify_name[1:])
        notify.settimeout(0.5)
        command = sandboxed_command(
            shlex.split(the(service, "Service.ExecStart")),
            state_root=state_root,
            checkout=PROJECT_ROOT,
            checkout_at=the(service, "Service.WorkingDirectory"),
            working_directory=the(service, "Service.WorkingDirectory"),
            listen_fd=listener.fileno(),
            uid=SERVICE_USER[0],
            gid=SERVICE_USER[1],
        )
        environment = {**service_environment(service), "NOTIFY_SOCKET": notify_name}
        with open(log, "ab") as output:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=environment,
                pass_fds=(listener.fileno(),),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_ready(notify, process, log)
            yield process
        finally:
            stop_process_group(process, signal.SIGTERM, STOP_SECONDS)


def nginx_command_line(setting: str, conf: str) -> list[str]:
    """One of the nginx unit's command lines, its state folder and configuration file where
    the sandbox has them."""
    line = the(unit_settings(NGINX_SERVICE), setting).replace("%S", STATE_ROOT)
    return [conf if part == NGINX_CONF_INSTALLED else part for part in shlex.split(line)]


def sandboxed_nginx(command: list[str], state_root: Path) -> list[str]:
    checkout_at = the(unit_settings(SERVICE), "Service.WorkingDirectory")
    return sandboxed_command(
        command,
        state_root=state_root,
        checkout=PROJECT_ROOT,
        checkout_at=checkout_at,
        working_directory="/",
        listen_fd=None,
        uid=SERVICE_USER[0],
        gid=SERVICE_USER[1],
    )


@contextmanager
def nginx_running(state_root: Path, upstream_port: int, log: Path) -> Iterator[int]:
    """The nginx unit in its sandbox, in front of gunicorn's socket; its port."""
    port = free_port()
    checkout_at = the(unit_settings(SERVICE), "Service.WorkingDirectory")
    conf = state_root / "globalupdates-nginx.conf"
    # The unit's /tmp is its own (PrivateTmp=): the GeoIP2 database goes where a host keeps
    # one, under /var/lib.
    geoip = state_root / "GeoIP-test-city.mmdb"
    shutil.copyfile(geoip_database(), geoip)
    geoip.chmod(0o644)
    text = nginx_conf_for(port, upstream_port, Path(checkout_at))
    conf.write_text(text.replace(str(geoip_database()), f"{STATE_ROOT}/{geoip.name}"))
    prefix = state_root / "globalupdates-nginx"
    for folder in (prefix, prefix / "logs"):  # StateDirectory=, owned by the unit's user
        folder.mkdir(mode=0o750)
        os.chown(folder, *SERVICE_USER)
    sandbox_conf = f"{STATE_ROOT}/{conf.name}"
    check = subprocess.run(
        sandboxed_nginx(nginx_command_line("Service.ExecStartPre", sandbox_conf), state_root),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with open(log, "ab") as output:
        process = subprocess.Popen(
            sandboxed_nginx(nginx_command_line("Service.ExecStart", sandbox_conf), state_root),
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"nginx exited:\n{log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"nginx does not listen:\n{log.read_text()}"
                time.sleep(0.1)
        yield port
    finally:
        stop_process_group(process, signal.SIGQUIT, STOP_SECONDS)  # KillSignal=SIGQUIT


def choose_accept_all(port: int) -> int:
    body = urlencode({"action": "accept_all", "next": "/"})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://{HOST}:{port}",
    }
    return request(port, "POST", "/consent", body, headers)[0]


def stored_choices(instance: Path) -> int:
    with sqlite3.connect(f"file:{instance / 'globalupdates.sqlite3'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM consent_record").fetchone()[0])


@pytest.mark.slow
def test_the_site_runs_in_the_units_sandboxes_behind_nginx_and_a_restart_refuses_no_connection(
    tmp_path,
):
    """The service with the example's settings as they stand (an operator changes only the
    values), nginx in front as its unit runs it, each in its sandbox."""
    assert os.geteuid() == 0, "making the sandbox's mount namespace takes root (as CI runs)"
    state_root = tmp_path / "var-lib"
    instance = state_root / "globalupdates"
    instance.mkdir(parents=True, mode=0o700)  # StateDirectory=, owned by the service's user
    os.chown(instance, *SERVICE_USER)
    state_root.chmod(0o755)
    log = tmp_path / "service.log"
    nginx_log = tmp_path / "nginx.log"
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        port = listener.getsockname()[1]
        with service_running(listener, state_root, log) as process:
            assert request(port, "GET", "/healthz")[0] == 200
            with nginx_running(state_root, port, nginx_log) as front:
                assert request(front, "GET", "/healthz")[0] == 200
                assert request(front, "GET", "/")[0] == 200
                assert choose_accept_all(front) == 303
                stylesheet = (PROJECT_ROOT / "static" / "css" / "site.css").read_text()
                assert request(front, "GET", "/static/css/site.css") == (200, stylesheet)
            os.kill(process.pid, signal.SIGHUP)  # ExecReload
            assert request(port, "GET", "/healthz")[0] == 200
            assert choose_accept_all(port) == 303
        # Stopped, as during `systemctl restart`: the socket stays, so a reader's connection
        # is accepted and waits for the next master instead of being refused.
        waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=READY_SECONDS)
        waiting.request("GET", "/", headers={"Host": f"{HOST}:{port}"})
        with service_running(listener, state_root, log):
            assert waiting.getresponse().status == 200
            waiting.close()
            assert choose_accept_all(port) == 303
    for text in (log.read_text(), nginx_log.read_text()):
        assert "Read-only file system" not in text, text
        assert "Permission denied" not in text, text
        assert "Traceback" not in text, text
    assert stored_choices(instance) == 3
    assert (instance / "consent_proof_keys").is_file()
    assert '"GET / HTTP/1.1"' in (state_root / "globalupdates-nginx/logs/access.log").read_text()
