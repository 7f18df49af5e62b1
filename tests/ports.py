"""Free ports on 127.0.0.1 for the servers that tests start.

Asking the kernel for port 0 gives a port from its *ephemeral* range, the one it also takes
source ports of outgoing connections from: between the test closing its probe socket and the
server binding the port, any connection (to PostgreSQL, say) can take it, and the server then
fails with "Address already in use". So ports are drawn at random from below that range,
where the kernel never assigns one by itself, and checked by binding them.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(*, udp: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP too, with ``udp=True``)."""
    high = max(_ephemeral_start(), LOWEST + 1_000)
    kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if udp else [socket.SOCK_STREAM]
    for _ in range(200):
        port = random.randrange(LOWEST, high)
        probes = [socket.socket(socket.AF_INET, kind) for kind in kinds]
        try:
            for probe in probes:
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return port
    raise RuntimeError("no free port on 127.0.0.1")
