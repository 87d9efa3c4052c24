"""deploy/nginx-hosts.conf is written from deploy/nginx.conf: the same file with the changes
below, so that the two never tell nginx different things about the site.

An operator reads and deploys the hosts file as it is, a whole configuration; whoever changes
deploy/nginx.conf runs ``make nginx-hosts`` (this module) to write it again, and
tests/serving/test_several_hosts.py fails while the committed file differs from what this
writes. Each change replaces text that must appear exactly once in deploy/nginx.conf, so an
edit there that moves one of them stops this loudly instead of leaving a change out.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from globalupdates.config import PROJECT_ROOT
from tests.support.geoip import geoip_database
from tests.support.nginx_server import (
    DEPLOYED_CONF,
    GEOIP_LINE,
    LISTEN_LINE,
    STATIC_ROOT_LINE,
    Nginx,
    running_nginx,
    with_operator_lines,
)

HOSTS_CONF = PROJECT_ROOT / "deploy" / "nginx-hosts.conf"
# The two hosts the file names until an operator puts theirs: documentation addresses
# (RFC 5737), which route nowhere, so a file deployed unedited fails loudly.
HOST_ADDRESSES = ("192.0.2.11:8000", "192.0.2.12:8000")
HOST_LINES = tuple(f"server {address} max_fails=1 fail_timeout=10s;" for address in HOST_ADDRESSES)

TITLE = """\
# nginx in front of Global Updates (gunicorn): caches first-visit pages, serves /static/ itself.
"""
HOSTS_TITLE = """\
# nginx in front of Global Updates on several hosts: gunicorn on each host, one PostgreSQL and
# one Redis shared by all (docs/operations.md, "Several hosts"). It caches first-visit pages,
# serves /static/ itself, and sends each request to a host that answers.
#
# This file is deploy/nginx.conf with this header and the changes marked "Several hosts" below:
# the upstream names every host's gunicorn, a host that cannot be reached is given up on after
# 1 s and its requests go to another host, and the operator's lines are one per host.
# Everything else is nginx.conf's, word for word: `make nginx-hosts` writes this file again
# from it, and tests/serving/test_several_hosts.py fails when the two have drifted apart.
"""

RUN_LINE = "#     nginx -p /srv/gu-nginx/ -c /path/to/checkout/deploy/nginx.conf -g 'daemon off;'\n"
HOSTS_RUN_LINE = (
    "#     nginx -p /srv/gu-nginx/ -c /path/to/checkout/deploy/nginx-hosts.conf -g 'daemon off;'\n"
)

OPERATOR_LINES = """\
# Four lines are the operator's, each marked OPERATOR below: the address nginx listens on,
# the address gunicorn listens on, the checkout whose static/ folder nginx serves, and the
# GeoIP2 City database nginx looks readers' places up in.
"""
HOSTS_OPERATOR_LINES = """\
# Several hosts: the lines marked OPERATOR below are the operator's: the address nginx listens
# on, one `server` line per host naming where that host's gunicorn listens, the checkout
# whose static/ folder nginx serves (the release every host runs), and the GeoIP2 City
# database nginx looks readers' places up in.
"""

UPSTREAM = """\
    upstream globalupdates {
        server 127.0.0.1:8000;  # OPERATOR: where gunicorn listens (its GUNICORN_BIND)
"""
HOSTS_UPSTREAM = f"""\
    # Several hosts: every host's gunicorn, one line each (add a line per host). A host that
    # fails a request (see proxy_next_upstream below) is left out for fail_timeout, then tried
    # again; meanwhile its readers go to the others, which can answer any of them because
    # nothing a request needs lives on one host. Readers are spread round-robin: no stickiness
    # is needed, as every host has the same secret key and proof keys.
    upstream globalupdates {{
        {HOST_LINES[0]}  # OPERATOR: host 1's GUNICORN_BIND
        {HOST_LINES[1]}  # OPERATOR: host 2's GUNICORN_BIND
"""

CONNECT_TIMEOUT = """\
        proxy_connect_timeout 5s;
"""
HOSTS_CONNECT_TIMEOUT = """\
        # Several hosts: a host that does not accept the connection within 1 s is taken for
        # down (one gunicorn alone waits 5 s: there is no other to ask). A request goes on to
        # the next host when the first refused or dropped the connection, timed out, or a
        # proxy in between answered 502 or 504; a POST only when it never reached the first
        # (nginx does not resend a POST it has sent, so no choice is made twice). A 503 is
        # the site's own answer to an outage the hosts share (the database): it is passed on,
        # not retried, so it cannot mark every host down at once.
        proxy_connect_timeout 1s;
        proxy_next_upstream error timeout http_502 http_504;
"""

CHANGES = (
    (TITLE, HOSTS_TITLE),
    (RUN_LINE, HOSTS_RUN_LINE),
    (OPERATOR_LINES, HOSTS_OPERATOR_LINES),
    (UPSTREAM, HOSTS_UPSTREAM),
    (CONNECT_TIMEOUT, HOSTS_CONNECT_TIMEOUT),
)


def several_hosts_conf(one_host: str) -> str:
    """The text of deploy/nginx-hosts.conf for this text of deploy/nginx.conf."""
    text = one_host
    for old, new in CHANGES:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"deploy/nginx.conf has {old.strip()!r} {count} times, not once")
        text = text.replace(old, new)
    return text


def hosts_conf_for(listen_port: int, upstream_ports: Sequence[int], site_root: Path) -> str:
    """deploy/nginx-hosts.conf with the operator's lines pointed at this machine: one
    gunicorn per port, as many as the file names hosts."""
    if len(upstream_ports) != len(HOST_ADDRESSES):
        raise ValueError(f"the file names {len(HOST_ADDRESSES)} hosts, not {len(upstream_ports)}")
    hosts = {
        f"server {address} ": f"server 127.0.0.1:{port} "
        for address, port in zip(HOST_ADDRESSES, upstream_ports, strict=True)
    }
    return with_operator_lines(
        HOSTS_CONF,
        {
            LISTEN_LINE: f"listen 127.0.0.1:{listen_port};",
            **hosts,
            STATIC_ROOT_LINE: f"root {site_root};",
            GEOIP_LINE: f"geoip2 {geoip_database()} {{",
        },
    )


def hosts_nginx(upstream_ports: Sequence[int], site_root: Path) -> AbstractContextManager[Nginx]:
    """Run deploy/nginx-hosts.conf in front of the gunicorns at ``upstream_ports``."""
    return running_nginx(lambda port, _prefix: hosts_conf_for(port, upstream_ports, site_root))


def main() -> None:
    HOSTS_CONF.write_text(several_hosts_conf(DEPLOYED_CONF.read_text()))
    print(f"wrote {HOSTS_CONF.relative_to(PROJECT_ROOT)} from deploy/nginx.conf")


if __name__ == "__main__":
    main()
