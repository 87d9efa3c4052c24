"""Grade the site with the MDN HTTP Observatory scanner, over TLS on loopback.

    .venv/bin/python bench/observatory.py [--output bench/reports/observatory.json]

What it does, all on 127.0.0.1 and all stopped at the end:
1. installs the scanner with npm (without its install scripts, which download lists) into a
   work folder and gives it the two offline lists it expects;
2. makes a throwaway certificate authority and a certificate for 127.0.0.1 with openssl;
3. starts gunicorn serving the site over TLS with that certificate, on a fresh SQLite file
   (started and stopped by tests/support, as the tests start it);
4. starts a small front door on one port that passes TLS through to gunicorn and answers
   plain HTTP with a redirect to HTTPS, as a production reverse proxy would on port 80;
5. runs the scanner against that port, trusting the throwaway CA, and prints the grade.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from tests.support.gunicorn_server import Tls, running_gunicorn
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "@mdn/mdn-http-observatory@1.4.8"
TLS_HANDSHAKE = 0x16


def install_scanner(workdir: Path) -> Path:
    package = workdir / "node_modules" / "@mdn" / "mdn-http-observatory"
    if not package.is_dir():
        subprocess.run(
            ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "-E", PACKAGE],
            cwd=workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (package / "conf" / "hsts-preload.json").write_text("{}")
    (package / "conf" / "tld-list.json").write_text(json.dumps(["com", "org", "net", "localhost"]))
    return package


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> Tls:
    """A throwaway CA, and a certificate it signs for 127.0.0.1 and localhost."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=Global Updates throwaway test CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "site.key", "-out", "site.csr", cwd=folder)  # fmt: skip
    (folder / "site.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "site.ext", "-out", "site.pem",
            cwd=folder)  # fmt: skip
    return Tls(
        certificate=folder / "site.pem", key=folder / "site.key", authority=folder / "ca.pem"
    )


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def front_door(public_port: int, tls_port: int, stop: asyncio.Event) -> None:
    """TLS passes through to gunicorn; plain HTTP is redirected to the HTTPS URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(1)
        if first and first[0] == TLS_HANDSHAKE:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", tls_port)
            upstream_writer.write(first)
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
            return
        request = first + await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode("latin-1") if b" " in request else "/"
        location = f"https://127.0.0.1:{public_port}{path}"
        writer.write(
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: "
            + location.encode("latin-1")
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", public_port)
    async with server:
        await stop.wait()


def run_scan(package: Path, target: str, ca: Path) -> dict:
    """Run the scanner's own entry point; its wrapper would replace NODE_EXTRA_CA_CERTS."""
    result = subprocess.run(
        ["node", str(package / "src" / "scan.js"), target],
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return json.loads(result.stdout)


def scan_served_site(package: Path, run_folder: Path) -> dict:
    """The site over TLS behind the front door, scanned; everything stopped afterwards."""
    tls = make_certificates(run_folder)
    database = f"sqlite:///{run_folder / 'observatory.sqlite3'}"
    settings = {"WEB_CONCURRENCY": "2"}
    with running_gunicorn(database, run_folder, settings, tls=tls) as server:
        public_port = free_port()
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        door = threading.Thread(
            target=loop.run_until_complete,
            args=(front_door(public_port, server.port, stop),),
            daemon=True,
        )
        door.start()
        try:
            return run_scan(package, f"127.0.0.1:{public_port}", tls.authority)
        finally:
            loop.call_soon_threadsafe(stop.set)
            door.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gu-observatory"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "reports" / "observatory.json"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    package = install_scanner(args.workdir)
    run_folder = Path(tempfile.mkdtemp(prefix="gu-observatory-run-"))
    try:
        report = scan_served_site(package, run_folder)
    finally:
        shutil.rmtree(run_folder, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    if "error" in report:
        raise SystemExit(f"scan failed: {report['error']}")
    scan = report["scan"]
    print(f"MDN HTTP Observatory: grade {scan['grade']}, score {scan['score']}, "
          f"{scan['testsPassed']}/{scan['testsQuantity']} tests passed")  # fmt: skip
    for name, test in sorted(report["tests"].items()):
        mark = "pass" if test["pass"] else "FAIL"
        print(f"  {mark}  {name}: {test['result']} ({test['scoreModifier']:+d})")


if __name__ == "__main__":
    main()
