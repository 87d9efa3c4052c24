"""What every server the tests and the bench start needs: a free loopback port, and a stop
that leaves nothing of it running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 and took back: free for the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process_group(
    process: subprocess.Popen[bytes], first: signal.Signals, grace: float
) -> None:
    """Send ``first`` to the process group ``process`` leads (started with
    ``start_new_session=True``), give the leader ``grace`` seconds to exit, then SIGKILL what
    is left of the group: all of it, or a child the leader left behind."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, first)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port where a connection is never accepted: a host gone silent (unplugged, or
    cut off by the network), not one that refuses. Its one-place backlog is filled at once, so
    the kernel drops every further SYN and a client waits out its own connect timeout."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            yield port
