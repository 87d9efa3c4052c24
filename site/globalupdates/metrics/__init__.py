"""Prometheus metrics: what the site counts, and ``/metrics`` for the addresses allowed to read it.

The metrics themselves are in ``instruments``, the request steps that count every request in
``requests``, the view in ``views``. Under gunicorn, ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the app is imported, so every worker writes its values to
files there and a scrape answered by any worker adds them all up; without it (``flask run``,
the tests' apps) the values live in the process's default registry.
"""

from __future__ import annotations

from flask import Flask

from . import views
from .instruments import RECORDING


def init_app(app: Flask) -> None:
    """Count and serve ``/metrics``, unless ``METRICS_ENABLED`` is false: then nothing is
    counted and ``/metrics`` is the site's 404."""
    RECORDING.enabled = bool(app.config["METRICS_ENABLED"])
    if RECORDING.enabled:
        views.init_app(app)
