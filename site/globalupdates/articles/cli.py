from __future__ import annotations

from pathlib import Path

import click
from flask import Blueprint, current_app

from .importer import ArticleImportError, import_paths

bp = Blueprint("articles_cli", __name__, cli_group="articles")


@bp.cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_command(paths: tuple[Path, ...]) -> None:
    """Import Markdown articles (files or folders); importing again updates by slug."""
    try:
        created, updated = import_paths(list(paths))
    except ArticleImportError as error:
        current_app.logger.warning("articles import refused, nothing imported: %s", error)
        raise click.ClickException(str(error)) from error
    click.echo(f"Imported {created} new and updated {updated} existing article(s).")
