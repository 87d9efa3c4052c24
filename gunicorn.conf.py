"""gunicorn settings for Global Updates; every value can be overridden from the environment.

The defaults come from measurements on a 2-core machine (docs/performance.md, "Workers"):
gthread workers keep connections alive, and two processes of four threads each served every
scenario of the bench as fast as three did, in about 30 MB less memory.
"""

import gc
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

UNIX_SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes on Linux; keep a margin


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def site_instance_folder() -> Path:
    """The same instance folder the app uses, so a site's control socket lives with its data."""
    configured = os.environ.get("FLASK_INSTANCE_PATH")
    return Path(configured) if configured else Path(__file__).resolve().parent / "instance"


def site_control_socket(bind_address: str) -> str:
    """A control-socket path of this site's own, never the shared ``~/.gunicorn/gunicorn.ctl``.

    Two sites (or two masters of one site on different addresses) must not take over each
    other's socket, so the path names the instance folder and the bound address. When that
    path is too long for a Unix socket, a digest of it in the temporary folder stands in.
    """
    explicit = os.environ.get("GUNICORN_CONTROL_SOCKET")
    if explicit:
        return explicit
    label = re.sub(r"[^A-Za-z0-9.]+", "-", bind_address).strip("-")[:48]
    path = site_instance_folder() / f"gunicorn-{label}.ctl"
    if len(os.fsencode(path)) <= UNIX_SOCKET_PATH_LIMIT:
        return str(path)
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:20]
    return str(Path(tempfile.gettempdir()) / f"globalupdates-{digest}.ctl")


# Metrics: prometheus_client's multiprocess mode, every worker writing its values to files in
# one directory (PROMETHEUS_MULTIPROC_DIR, by default "prometheus" in the instance folder). It
# must be set before the app, and so prometheus_client, is imported; on_starting empties it and
# child_exit folds each exited worker's files into the archives
# (globalupdates.metrics.multiprocess).
METRICS_DIRECTORY = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR") or site_instance_folder() / "prometheus"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIRECTORY)
METRICS_DIRECTORY.mkdir(parents=True, exist_ok=True)

from globalupdates import logs, server_errors  # noqa: E402 - after PROMETHEUS_MULTIPROC_DIR is set
from globalupdates.metrics import multiprocess as worker_metrics  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = env_int("WEB_CONCURRENCY", 2)
threads = env_int("GUNICORN_THREADS", 4)
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
timeout = env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 20)
control_socket = site_control_socket(bind)
control_socket_mode = 0o600
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (
    "/dev/shm" if os.path.isdir("/dev/shm") else None
)
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = os.environ.get("GUNICORN_ERRORLOG", "-")
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# gunicorn's lines in the site's format (JSON unless FLASK_LOG_FORMAT=text), and an access
# line with the request id, status, bytes, duration and the layer that answered.
logger_class = "globalupdates.logs.GunicornLogger"
logconfig_dict = logs.logging_config(
    os.environ.get("FLASK_LOG_FORMAT") or "json",
    os.environ.get("FLASK_LOG_LEVEL") or "INFO",
    gunicorn=True,
    gunicorn_level=loglevel,
    error_log=errorlog,
    access_log=accesslog or "-",
)
wsgi_app = "wsgi:app"
# The master imports and builds the app once; workers share its memory copy-on-write.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"

# gunicorn's own 400, 414 and 431 answers carry the site's fixed security headers; a gunicorn
# that no longer writes them the way this expects stops here, at start-up.
server_errors.install()


def on_starting(server):
    """Migrate and load demo content once, before any worker is forked, then warm the site up.

    The migration runs in a child process (``flask prepare``): alembic, which it needs, then
    never enters the master, whose memory every worker shares.
    """
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "prepare"],
        cwd=Path(__file__).resolve().parent,
        check=True,
    )
    from globalupdates.prepare import warm_up

    site = preloaded_site(server)
    if site is not None:
        warm_up(site)
    # Last: neither an earlier run's files nor what preparing and warming up counted in this
    # master (whose caches the workers inherit and count themselves) is any worker's.
    worker_metrics.empty_directory(METRICS_DIRECTORY)


def worker_exit(server, worker):
    """In the worker, as it leaves: the request counts it tallied go into its metrics."""
    from globalupdates.metrics.requests import TALLY

    TALLY.flush()


def child_exit(server, worker):
    """A worker exited: its counts go into the metrics archives, its live gauges go away."""
    worker_metrics.retire_worker(METRICS_DIRECTORY, worker.pid)


def preloaded_site(server):
    """The site the master loaded, or None when preloading is off or the loaded app is
    another (the bench runs a bare Flask app under this same file)."""
    if not server.cfg.preload_app:
        return None
    app = server.app.wsgi()
    return app if "consent" in getattr(app, "extensions", {}) else None


def pre_fork(server, worker):
    """Move everything the master built into the collector's permanent generation, so that
    a collection in a worker does not touch (and so copy) the pages it shares with the
    master."""
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    """A worker must not use the master's database connections: each opens its own."""
    app = preloaded_site(server)
    if app is None:
        return
    from globalupdates.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
