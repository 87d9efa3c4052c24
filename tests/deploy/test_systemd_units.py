"""deploy/'s systemd units: systemd accepts them, and the site runs in the sandbox they set.

systemd is not PID 1 here, so the units cannot be started as such. ``systemd-analyze verify``
checks them as systemd would load them; the site then runs with the service's own command
line, environment and settings file, in the file system view its sandbox gives it
(tests/support/systemd_sandbox.py: read-only but for its state folder, private /tmp, a user
other than root, no new privileges, the listening socket passed as the socket unit passes it).
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
from tests.support.servers import stop_process_group
from tests.support.systemd_sandbox import STATE_ROOT, sandboxed_command

DEPLOY = PROJECT_ROOT / "deploy"
SERVICE = DEPLOY / "globalupdates.service"
SOCKET = DEPLOY / "globalupdates.socket"
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
    result = verify(service, socket_unit)
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


def service_environment(service: dict[str, list[str]], overrides: dict[str, str]) -> dict[str, str]:
    """What systemd gives the service: the settings file, then the unit's Environment=."""
    environment = {**environment_file(ENVIRONMENT_EXAMPLE), **overrides}
    for assignment in service["Service.Environment"]:
        name, _, value = assignment.partition("=")
        environment[name] = value.replace("%S", STATE_ROOT)
    return environment


def request(port: int, method: str, path: str, body: str = "", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers={"Host": HOST, **(headers or {})})
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
    listener: socket.socket, state_root: Path, log: Path, settings: dict[str, str]
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
            working_directory=the(service, "Service.WorkingDirectory"),
            listen_fd=listener.fileno(),
            uid=SERVICE_USER[0],
            gid=SERVICE_USER[1],
        )
        environment = {**service_environment(service, settings), "NOTIFY_SOCKET": notify_name}
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


def choose_accept_all(port: int) -> int:
    body = urlencode({"action": "accept_all", "next": "/"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://{HOST}"}
    return request(port, "POST", "/consent", body, headers)[0]


def stored_choices(instance: Path) -> int:
    with sqlite3.connect(f"file:{instance / 'globalupdates.sqlite3'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM consent_record").fetchone()[0])


@pytest.mark.slow
def test_the_site_runs_in_the_service_sandbox_and_a_restart_refuses_no_connection(tmp_path):
    assert os.geteuid() == 0, "making the sandbox's mount namespace takes root (as CI runs)"
    state_root = tmp_path / "var-lib"
    instance = state_root / "globalupdates"
    instance.mkdir(parents=True, mode=0o700)  # StateDirectory=, owned by the service's user
    os.chown(instance, *SERVICE_USER)
    state_root.chmod(0o755)
    log = tmp_path / "service.log"
    # No FLASK_PROXY_FIX_*: the test speaks to gunicorn directly, without nginx's headers.
    settings = {f"FLASK_PROXY_FIX_X_{part}": "0" for part in ("FOR", "PROTO", "HOST", "PORT")}
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        port = listener.getsockname()[1]
        with service_running(listener, state_root, log, settings) as process:
            assert request(port, "GET", "/healthz")[0] == 200
            assert request(port, "GET", "/")[0] == 200
            assert choose_accept_all(port) == 303
            workers = set(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text())
            os.kill(process.pid, signal.SIGHUP)  # ExecReload
            assert request(port, "GET", "/healthz")[0] == 200
            assert choose_accept_all(port) == 303
            assert workers
        # Stopped, as during `systemctl restart`: the socket stays, so a reader's connection
        # is accepted and waits for the next master instead of being refused.
        waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=READY_SECONDS)
        waiting.request("GET", "/", headers={"Host": HOST})
        with service_running(listener, state_root, log, settings):
            assert waiting.getresponse().status == 200
            waiting.close()
            assert choose_accept_all(port) == 303
    text = log.read_text()
    assert "Read-only file system" not in text, text
    assert "Traceback" not in text, text
    assert stored_choices(instance) == 3
    assert (instance / "consent_proof_keys").is_file()
