"""The file system view the service unit gives gunicorn, made without systemd as PID 1.

``sandboxed_command`` wraps a unit's ``ExecStart`` so that, in a mount namespace of its own,
it sees what the service unit in deploy/ gives it: every mount read-only
(``ProtectSystem=strict``) but the API file systems (``/proc``, ``/sys``, ``/dev``, so also
``/dev/shm``), the state folder (``StateDirectory=``, at ``/var/lib``) and fresh ``/tmp`` and
``/var/tmp`` (``PrivateTmp=``); empty home folders (``ProtectHome=``); the checkout at the
unit's ``WorkingDirectory``; a user other than root with no new privileges (``User=``,
``NoNewPrivileges=``); and the listening socket
as systemd passes it (fd 3, ``LISTEN_FDS``/``LISTEN_PID``), so the socket outlives gunicorn
as it does under the socket unit.

Run as ``python -m tests.support.systemd_sandbox SPEC_JSON`` under
``unshare --mount --propagation private``: it sets the mounts up and then becomes (exec)
the service, so its process id is the one systemd would give ``LISTEN_PID``. Not reproduced:
the seccomp filter, the capability bounding set and the other kernel-level settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

API_FILE_SYSTEMS = ("/proc", "/sys", "/dev")
PRIVATE_TMP = ("/tmp", "/var/tmp")
STATE_ROOT = "/var/lib"
HOME_FOLDERS = ("/root", "/home", "/run/user")
SD_LISTEN_FDS_START = 3
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sandboxed_command(
    exec_start: Sequence[str],
    *,
    state_root: Path,
    checkout: Path,
    checkout_at: str,
    working_directory: str,
    listen_fd: int | None,
    uid: int,
    gid: int,
) -> list[str]:
    """The command line that runs ``exec_start`` in the unit's view of the file system, with
    ``checkout`` seen at ``checkout_at`` and, unless ``listen_fd`` is None, that listening
    socket passed to it."""
    spec = {
        "exec_start": list(exec_start),
        "state_root": str(state_root),
        "checkout": str(checkout),
        "checkout_at": checkout_at,
        "working_directory": working_directory,
        "listen_fd": listen_fd,
        "uid": uid,
        "gid": gid,
        "interpreter": sys.base_prefix,
    }
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        sys.executable,
        "-m",
        "tests.support.systemd_sandbox",
        json.dumps(spec),
    ]


def mount(*arguments: str) -> None:
    subprocess.run(["mount", *arguments], check=True)


def mount_points() -> list[str]:
    """Every mount point, as /proc/self/mountinfo lists them (octal escapes decoded)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].encode().decode("unicode_escape") for line in lines]


def is_within(path: str, folders: Sequence[str]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


def protect_system(writable: Sequence[str]) -> None:
    """``ProtectSystem=strict``: every mount read-only but the API file systems and
    ``writable``."""
    for point in mount_points():
        hidden = not os.path.exists(point)  # under a mount made over it: nothing to reach
        if not hidden and not is_within(point, API_FILE_SYSTEMS) and point not in writable:
            mount("-o", "remount,bind,ro", point)


def protect_home(interpreter: str) -> None:
    """``ProtectHome=yes``: the home folders empty to the service. A machine whose Python
    lives in a home folder (pyenv) keeps that one folder, as an operator's venv made from
    Debian's /usr/bin/python3 needs nothing of a home."""
    staging = "/mnt"
    inside_home = is_within(interpreter, HOME_FOLDERS)
    if inside_home:
        mount("--bind", interpreter, staging)
    for home in HOME_FOLDERS:
        if Path(home).is_dir():
            mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", home)
    if inside_home:
        Path(interpreter).mkdir(parents=True)
        mount("--bind", staging, interpreter)


def build_view(spec: Mapping[str, object]) -> None:
    checkout_at = str(spec["checkout_at"])
    protect_home(str(spec["interpreter"]))
    mount("--bind", str(spec["state_root"]), STATE_ROOT)
    mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(Path(checkout_at).parent))
    Path(checkout_at).mkdir()
    mount("--bind", str(spec["checkout"]), checkout_at)
    protect_system(writable=[STATE_ROOT])
    for folder in PRIVATE_TMP:
        mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", folder)
    keep_checkout_under_tmp(str(spec["checkout"]), checkout_at)


def keep_checkout_under_tmp(checkout: str, checkout_at: str) -> None:
    """The venv's scripts name their interpreter by the path the venv was made at: an
    operator's, made at /srv/globalupdates, names that one. A test's checkout under /tmp (a
    clean clone, as CI's is) would vanish behind the private /tmp, so it is bound there again,
    read-only like the rest."""
    if not is_within(checkout, PRIVATE_TMP):
        return
    Path(checkout).mkdir(parents=True)
    mount("--bind", checkout_at, checkout)
    mount("-o", "remount,bind,ro", checkout)


def become_service(spec: Mapping[str, object]) -> None:
    """Hand the listening socket over as systemd does and exec the unit's command as its
    user, never to gain privileges again."""
    if spec["listen_fd"] is not None:
        listen_fd = int(str(spec["listen_fd"]))
        if listen_fd != SD_LISTEN_FDS_START:
            os.dup2(listen_fd, SD_LISTEN_FDS_START, inheritable=True)
            os.close(listen_fd)
        os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    os.environ["PATH"] = SERVICE_PATH
    os.chdir(str(spec["working_directory"]))
    exec_start = [str(part) for part in spec["exec_start"]]  # type: ignore[attr-defined]
    user = [f"--reuid={spec['uid']}", f"--regid={spec['gid']}", "--clear-groups"]
    os.execvp("setpriv", ["setpriv", *user, "--no-new-privs", *exec_start])


def main(argv: Sequence[str]) -> None:
    spec = json.loads(argv[1])
    build_view(spec)
    become_service(spec)


if __name__ == "__main__":
    main(sys.argv)
