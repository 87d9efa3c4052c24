from __future__ import annotations

from flask import Flask

from . import cli, views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
