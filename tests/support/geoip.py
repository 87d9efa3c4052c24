"""A small GeoIP2 City database for nginx's geoip2 module, built by the tests (no real
database ships with Debian): a handful of loopback addresses, each standing for a place.

Every address in 127.0.0.0/8 reaches a server listening on 127.0.0.1, so a test connects
*from* one of these addresses to be a reader from that place. 127.0.0.1 itself, the address
every other test connects from, is not in the database: a place nginx cannot tell.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# Address: (country, subdivision or None), as the database holds them.
PLACES: dict[str, tuple[str, str | None]] = {
    "127.0.0.2": ("US", "CA"),  # California: opt-out
    "127.0.0.3": ("DE", None),  # Germany: opt-in, listed
    "127.0.0.4": ("US", "NY"),  # New York: not listed, opt-in
    "127.0.0.5": ("T1", None),  # the code a CDN gives the Tor network: opt-in
    "127.0.0.6": ("US", "TX"),  # Texas: opt-out
    "127.0.0.7": ("BR", None),  # Brazil: not listed, opt-in
}
UNKNOWN_ADDRESS = "127.0.0.1"


def place_record(country: str, subdivision: str | None) -> dict[str, object]:
    record: dict[str, object] = {"country": {"iso_code": country}}
    if subdivision is not None:
        record["subdivisions"] = [{"iso_code": subdivision}]
    return record


def write_database(path: Path, places: dict[str, tuple[str, str | None]] = PLACES) -> Path:
    writer = MMDBWriter(ip_version=4, database_type="GeoIP2-City", languages=["en"])
    for address, (country, subdivision) in places.items():
        writer.insert_network(IPSet([f"{address}/32"]), place_record(country, subdivision))
    writer.to_db_file(str(path))
    path.chmod(0o644)
    return path


@cache
def geoip_database() -> Path:
    """The database of ``PLACES``, written once per test process into a folder nginx's
    workers can read (they run as ``nobody`` when the suite runs as root)."""
    folder = Path(tempfile.mkdtemp(prefix="gu-geoip-"))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, True)
    return write_database(folder / "test-city.mmdb")
