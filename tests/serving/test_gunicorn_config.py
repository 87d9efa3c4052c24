"""gunicorn.conf.py: the measured defaults, environment overrides and a control socket per site."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import ModuleType

import pytest
from gunicorn import util
from gunicorn.config import Config

from globalupdates import server_errors
from globalupdates.config import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "gunicorn.conf.py"
OVERRIDES = (
    "GUNICORN_BIND",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_THREADS",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_CONTROL_SOCKET",
    "GUNICORN_ACCESSLOG",
    "FLASK_INSTANCE_PATH",
)


@pytest.fixture
def load_settings(monkeypatch: pytest.MonkeyPatch):
    """Read gunicorn.conf.py as gunicorn does, under a given environment."""
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    # The file sets this one for the app it loads: noted here, so it is put back after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")

    def load(**env: str) -> dict[str, object]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(CONFIG_FILE))

    return load


def gunicorn_config(settings: dict[str, object]) -> Config:
    """Apply the file's values to gunicorn's own Config, which validates each one."""
    config = Config()
    for name, value in settings.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_defaults_are_the_measured_choice(load_settings, tmp_path: Path):
    config = gunicorn_config(load_settings(FLASK_INSTANCE_PATH=str(tmp_path)))
    assert config.worker_class_str == "gthread"
    assert config.workers == 2
    assert config.threads == 4
    assert config.keepalive == 5
    assert config.address == [("127.0.0.1", 8000)]
    assert config.wsgi_app == "wsgi:app"


def test_every_module_level_setting_is_one_gunicorn_knows(load_settings, tmp_path: Path):
    """A misspelt setting would be ignored by gunicorn without a word."""
    settings = load_settings(FLASK_INSTANCE_PATH=str(tmp_path))
    known = Config().settings
    values = {
        name
        for name, value in settings.items()
        if not name.startswith("_")
        and not callable(value)
        and not isinstance(value, (type, ModuleType))
    }
    helpers = {"UNIX_SOCKET_PATH_LIMIT", "METRICS_DIRECTORY"}
    assert values - helpers <= set(known)
    assert callable(settings["on_starting"])


def test_graceful_shutdown_lets_requests_finish(load_settings, tmp_path: Path):
    config = gunicorn_config(load_settings(FLASK_INSTANCE_PATH=str(tmp_path)))
    assert 10 <= config.graceful_timeout <= config.timeout


def test_environment_overrides_each_choice(load_settings, tmp_path: Path):
    config = gunicorn_config(
        load_settings(
            FLASK_INSTANCE_PATH=str(tmp_path),
            GUNICORN_BIND="127.0.0.1:9123",
            WEB_CONCURRENCY="5",
            GUNICORN_WORKER_CLASS="sync",
            GUNICORN_THREADS="1",
            GUNICORN_KEEPALIVE="2",
            GUNICORN_TIMEOUT="60",
            GUNICORN_GRACEFUL_TIMEOUT="40",
            GUNICORN_ACCESSLOG="",
        )
    )
    assert config.address == [("127.0.0.1", 9123)]
    assert (config.workers, config.worker_class_str, config.threads) == (5, "sync", 1)
    assert (config.keepalive, config.timeout, config.graceful_timeout) == (2, 60, 40)
    assert config.accesslog is None


def test_control_socket_belongs_to_the_site(load_settings, tmp_path: Path):
    """Not gunicorn's shared default, and different for another instance folder or address."""
    first = load_settings(FLASK_INSTANCE_PATH=str(tmp_path / "a"))["control_socket"]
    second = load_settings(FLASK_INSTANCE_PATH=str(tmp_path / "b"))["control_socket"]
    other_port = load_settings(FLASK_INSTANCE_PATH=str(tmp_path / "a"), PORT="8001")[
        "control_socket"
    ]
    shared_default = Config().control_socket
    assert len({first, second, other_port, shared_default}) == 4
    assert str(first).startswith(str(tmp_path / "a"))
    assert gunicorn_config(load_settings()).control_socket_disable is False


def test_control_socket_path_fits_a_unix_socket(load_settings, tmp_path: Path):
    deep = tmp_path / ("nested-folder-" * 8) / "instance"
    first = str(load_settings(FLASK_INSTANCE_PATH=str(deep))["control_socket"])
    second = str(load_settings(FLASK_INSTANCE_PATH=str(deep) + "-2")["control_socket"])
    assert len(first.encode()) < 108
    assert first != second


def test_control_socket_can_be_named(load_settings, tmp_path: Path):
    path = str(tmp_path / "ops.ctl")
    assert load_settings(GUNICORN_CONTROL_SOCKET=path)["control_socket"] == path


def test_loading_the_file_gives_gunicorn_the_sites_error_answers(
    load_settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    def gunicorns_own(sock, status_int, reason, mesg):
        raise AssertionError("gunicorn's own write_error was left in place")

    monkeypatch.setattr(util, "write_error", gunicorns_own)
    load_settings(FLASK_INSTANCE_PATH=str(tmp_path))
    assert util.write_error is server_errors.write_error
