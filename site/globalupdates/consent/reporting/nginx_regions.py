"""``flask consent nginx-regions``: the registry's ``[regions]`` as the nginx ``map`` that
``deploy/nginx.conf`` keys pages on.

nginx looks the reader's place up itself (GeoIP2) and must put them under the regime the site
will, or every page it keys would be refused storage. So the map is never written by hand: this
command makes it from the registry, ``--write`` puts it between its two marker lines in a
configuration file, and a test fails while the shipped ``deploy/nginx.conf`` holds another.

The map reads ``"<country>-<subdivision>"``: a listed subdivision matches exactly, a country by
a pattern on its prefix (nginx tries exact strings before patterns, so a subdivision decides
before its country, as in the site), and anything else is opt-in. Only places whose regime
differs from what they would get without their line are written.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from flask.cli import with_appcontext

from ..model.regions import OPT_IN, Regions
from ..web.engine import engine

BEGIN = "    # BEGIN regions: written by `flask consent nginx-regions`; do not edit by hand.\n"
END = "    # END regions\n"
MAP_INPUT = '"$gu_geo_country-$gu_geo_region"'
MAP_OUTPUT = "$gu_regime"


def map_lines(regions: Regions) -> list[tuple[str, str]]:
    """Each pattern and regime of the map, in the order written: countries, then
    subdivisions, each sorted."""
    countries = {place: name for place, name in regions.places.items() if "-" not in place}
    lines = [
        (f'"~^{country}-"', name) for country, name in sorted(countries.items()) if name != OPT_IN
    ]
    for place, name in sorted(regions.places.items()):
        country, dash, _ = place.partition("-")
        if dash and name != countries.get(country, OPT_IN):
            lines.append((f'"{place}"', name))
    return lines


def nginx_map(regions: Regions) -> str:
    """The block as it stands in ``deploy/nginx.conf``, marker lines included."""
    lines = map_lines(regions)
    width = max([len(pattern) for pattern, _ in lines] + [len("default")]) + 2
    body = "".join(f"        {pattern:<{width}}{name};\n" for pattern, name in lines)
    return (
        BEGIN
        + f"    map {MAP_INPUT} {MAP_OUTPUT} {{\n"
        + f"        {'default':<{width}}{OPT_IN};\n"
        + body
        + "    }\n"
        + END
    )


BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


def shipped_map(text: str) -> str | None:
    """The block a configuration holds, or None when it has none (or more than one)."""
    found = BLOCK.findall(text)
    return found[0] if len(found) == 1 else None


def with_map(text: str, block: str) -> str:
    if shipped_map(text) is None:
        raise click.ClickException(
            "the file must hold the regions block exactly once, between its marker lines:\n"
            + BEGIN
            + END
        )
    return BLOCK.sub(lambda _match: block, text)


@click.command("nginx-regions")
@with_appcontext
@click.option(
    "--write",
    "target",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Replace the regions block in this nginx configuration (deploy/nginx.conf) in place.",
)
def nginx_regions_command(target: Path | None) -> None:
    """Print the nginx map from places to regimes that the registry's [regions] gives, or
    write it into a configuration file."""
    block = nginx_map(engine().registry.regions)
    if target is None:
        click.echo(block, nl=False)
        return
    text = target.read_text(encoding="utf-8")
    updated = with_map(text, block)
    if updated != text:
        target.write_text(updated, encoding="utf-8")
        click.echo(f"{target}: regions map written")
    else:
        click.echo(f"{target}: regions map already current")
