"""A real BIND 9 server for tests, on 127.0.0.1 and a free port.

``running_bind(directory)`` writes a TSIG key (made by ``tsig-keygen``, the tool an admin uses),
a named.conf and the zone files into ``directory``, starts ``named -g`` in the foreground, waits
(bounded) until every zone answers a SOA query, and stops named on exit. Other test directories
import it as ``tests.dns.bind``.

The default zones:

* ``volact.test`` — dynamic, with exactly the ``update-policy`` that docs/dns.md tells admins to
  write: the key may change the SRV records of ``_volact._tcp.volact.test`` and nothing else.
* ``other.test`` — a second dynamic zone (``allow-update { key …; }``), for publishing to two
  domains.
* ``static.test`` — hand-written SRV records (two priorities, weights 1 and 3) plus a name that
  exists without SRV records, for discovery and ordering tests.

If ``named`` is not installed the harness fails with a message saying how to install it (the
tests claim DNS works, so skipping would hide a gap); ``scripts/setup`` installs bind9.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.update

from tests import ports
from volact.net.dns import DNSServer, TSIGKey, format_tsig_key, parse_tsig_key_file

NAMED = "/usr/sbin/named"
KEY_NAME = "volact-test"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Zone:
    """A zone to serve. ``update`` is "policy" (update-policy granting the key the SRV records
    of ``_volact._tcp.<zone>``), "allow" (allow-update by key) or None (static)."""

    name: str
    records: tuple[str, ...] = ()
    update: str | None = None


STATIC_RECORDS = (
    "_volact._tcp 300 IN SRV 10 1 7001 light.static.test.",
    "_volact._tcp 300 IN SRV 10 3 7002 heavy.static.test.",
    "_volact._tcp 300 IN SRV 20 5 7003 backup.static.test.",
    "light 300 IN A 127.0.0.1",
    "heavy 300 IN A 127.0.0.1",
    "backup 300 IN A 127.0.0.1",
    "nosrv 300 IN A 127.0.0.1",
    '_volact._tcp.nosrv 300 IN TXT "not an SRV record"',
)

DEFAULT_ZONES = (
    Zone("volact.test", update="policy"),
    Zone("other.test", update="allow"),
    Zone("static.test", records=STATIC_RECORDS),
)


@dataclass
class BindServer:
    """A running named. ``server`` is the address to give volact; ``key`` the TSIG key the zones
    accept; ``key_file`` the key as tsig-keygen wrote it."""

    directory: Path
    port: int
    key: TSIGKey
    key_file: Path
    zones: tuple[Zone, ...]
    process: subprocess.Popen[bytes] = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def server(self) -> DNSServer:
        return DNSServer(self.host, self.port)

    def log(self) -> str:
        """named's own log (its stderr), for failure messages."""
        try:
            return (self.directory / "named.log").read_text(errors="replace")
        except OSError:
            return ""

    def clear_srv(self, name: str, zone: str) -> None:
        """Delete every SRV record at ``name`` (signed with the zone's key), so tests sharing one
        server start from an empty name."""
        update = dns.update.UpdateMessage(zone + ".", keyring=_key(self.key))
        update.delete(name.rstrip(".") + ".", "SRV")
        response = dns.query.tcp(update, self.host, port=self.port, timeout=5)
        if response.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"clearing {name} failed: {dns.rcode.to_text(response.rcode())}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _key(key: TSIGKey) -> object:
    import dns.tsig

    return dns.tsig.Key(key.name + ".", key.secret, key.algorithm + ".")


def make_key_file(path: Path, name: str = KEY_NAME) -> TSIGKey:
    """Write a TSIG key file the way an admin makes one (``tsig-keygen``), and parse it back."""
    keygen = shutil.which("tsig-keygen") or (
        "/usr/sbin/tsig-keygen" if os.path.exists("/usr/sbin/tsig-keygen") else None
    )
    if keygen is not None:
        text = subprocess.run(
            [keygen, "-a", "hmac-sha256", name], check=True, capture_output=True, text=True
        ).stdout
    else:  # Same format, made here: tsig-keygen comes with bind9-utils, named with bind9.
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        text = format_tsig_key(TSIGKey(name, "hmac-sha256", secret))
    path.write_text(text)
    path.chmod(0o600)
    return parse_tsig_key_file(text)


def _zone_file(zone: Zone) -> str:
    head = [
        f"$ORIGIN {zone.name}.",
        "$TTL 300",
        f"@ IN SOA ns.{zone.name}. hostmaster.{zone.name}. 1 3600 600 86400 300",
        f"@ IN NS ns.{zone.name}.",
        "ns IN A 127.0.0.1",
    ]
    return "\n".join([*head, *zone.records]) + "\n"


def _zone_statement(zone: Zone, key_name: str) -> str:
    lines = [f'zone "{zone.name}" {{', "\ttype primary;", f'\tfile "{zone.name}.zone";']
    if zone.update == "policy":
        # Exactly what docs/dns.md tells an admin to write.
        lines.append(f"\tupdate-policy {{ grant {key_name} name _volact._tcp.{zone.name} SRV; }};")
    elif zone.update == "allow":
        lines.append(f"\tallow-update {{ key {key_name}; }};")
    lines.append("};")
    return "\n".join(lines)


def _named_conf(directory: Path, port: int, key_file: Path, zones: tuple[Zone, ...]) -> str:
    statements = "\n".join(_zone_statement(zone, KEY_NAME) for zone in zones)
    return f"""include "{key_file}";
options {{
\tdirectory "{directory}";
\tpid-file "{directory}/named.pid";
\tsession-keyfile "{directory}/session.key";
\tmanaged-keys-directory "{directory}";
\tlisten-on port {port} {{ 127.0.0.1; }};
\tlisten-on-v6 {{ none; }};
\trecursion no;
\tdnssec-validation no;
\tnotify no;
\tallow-query {{ any; }};
}};
controls {{ }};
{statements}
"""


def _answers_soa(port: int, zone: str) -> bool:
    query = dns.message.make_query(zone + ".", "SOA")
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.3)
    except (dns.exception.DNSException, OSError):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


def start_bind(directory: Path, zones: tuple[Zone, ...] = DEFAULT_ZONES) -> BindServer:
    """Start named serving ``zones`` from ``directory``; return once every zone answers."""
    if not os.access(NAMED, os.X_OK):
        raise RuntimeError(
            f"{NAMED} not found: the DNS tests need BIND 9. Install it with scripts/setup "
            "(or: apt-get install bind9 bind9-utils dnsutils)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "volact-test.key"
    key = make_key_file(key_file)
    for zone in zones:
        (directory / f"{zone.name}.zone").write_text(_zone_file(zone))
    last_log = ""
    for _ in range(3):  # Another process may take the free port before named binds it.
        port = ports.free_port(udp=True)  # named listens on both
        conf = directory / "named.conf"
        conf.write_text(_named_conf(directory, port, key_file, zones))
        log = directory / "named.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [NAMED, "-g", "-4", "-n", "1", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        bind = BindServer(directory, port, key, key_file, zones, process)
        deadline = time.monotonic() + START_TIMEOUT
        pending = [zone.name for zone in zones]
        while pending and process.poll() is None and time.monotonic() < deadline:
            if _answers_soa(port, pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.05)
        if not pending:
            return bind
        last_log = bind.log()
        bind.stop()
        if "address in use" not in last_log:
            break
    tail = "\n".join(last_log.splitlines()[-25:])
    raise RuntimeError(f"named did not start within {START_TIMEOUT:g}s; its log ends:\n{tail}")


@contextmanager
def running_bind(directory: Path, zones: tuple[Zone, ...] = DEFAULT_ZONES) -> Iterator[BindServer]:
    """``start_bind`` as a context manager that always stops named."""
    bind = start_bind(directory, zones)
    try:
        yield bind
    finally:
        bind.stop()
