"""``/metrics``: the Prometheus text exposition, for the addresses an operator allows.

Anyone else gets the site's 404, as for a page that does not exist. The address is the one
the site sees after ``ProxyFix``; behind nginx without the proxy settings every request comes
from loopback, so ``deploy/nginx.conf`` answers ``/metrics`` with 404 itself and never
forwards it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .checkpoint_age import checkpoint_age_metric
from .multiprocess import reading
from .requests import TALLY

bp = Blueprint("metrics", __name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWED = "metrics_allowed_networks"


def allowed_networks(
    value: str | Iterable[str] | None, setting: str = "METRICS_ALLOWED"
) -> tuple[Network, ...]:
    """The operator's ``METRICS_ALLOWED`` (or another ``setting`` of the same form): addresses
    or CIDR networks, a list or a comma-separated string; ``ValueError`` names an entry that
    is neither."""
    if value is None:
        return ()
    entries = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for entry in (item.strip() for item in entries):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"{setting}: {entry!r} is neither an IP address nor a network"
                ) from None
    return tuple(networks)


def is_allowed(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class Scrape:
    """What one scrape answers: the counted values (every worker's, or this process's), then
    the gauges computed now."""

    def __init__(self, values: Iterable[Metric]) -> None:
        self.values = values

    def collect(self) -> Iterator[Metric]:
        yield from self.values
        age = checkpoint_age_metric(current_app)
        if age is not None:
            yield age


def counted_values() -> Iterable[Metric]:
    TALLY.flush()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY.collect()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, directory)
    with reading(directory):
        return list(registry.collect())


@bp.get("/metrics")
def metrics() -> Response:
    if not is_allowed(request.remote_addr, current_app.extensions[ALLOWED]):
        abort(404)
    body = generate_latest(Scrape(counted_values()))
    return Response(body, headers={"Cache-Control": "no-store"}, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.extensions[ALLOWED] = allowed_networks(app.config.get("METRICS_ALLOWED"))
    app.register_blueprint(bp)
