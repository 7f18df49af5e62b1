"""The client's copy of the vendor's revocation list (issue 20; the format and its rules are
:mod:`volact.core.revocation`).

The vendor signs one list per host key (the key that certified the hosts: one customer's). A
client keeps the newest list it has met of each host key in
``<vendor_id>.<host key serial>.revocations.token`` in its state directory (a client only ever
meets one customer's hosts, but the lists are kept by key anyway). Every activation answer from
a host may carry a list (the field ``"revocations"``): it is verified under the product
descriptor's root keys, must be the list of the host key named in the answering host's
certificate (another key's list is ignored: one key's list never stands in for another's), and
is kept if its sequence is higher than the one held for that key, so that the client learns of
a revocation from any host of the organisation and can never be rolled back to an older list.
Then the answering host's certificate is checked against the newest list held of its key, and
its host key against the host keys revoked by the lists held of the other keys (the customer's
new key's list names the customer's revoked old key): a revoked (or superseded) host is refused
with ``host_revoked``, and the client tries the next host. :meth:`License.status` checks a
stored activation the same way, so a ticket from a host revoked since no longer counts.

Deleting the file is what a local administrator can do (docs/security.md): it forgets the
list until the next answer from an up-to-date host brings it back. (A file of version 1, one
list for all customers, named ``<vendor_id>.revocations.token``, is no longer read.)
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volact.client.state import StateDir
from volact.core.errors import StorageError, VolactError
from volact.crypto import KeyFormatError, VerifyKey
from volact.fileio import write_bytes_atomic

if TYPE_CHECKING:
    from volact.core.descriptor import ProductDescriptor
    from volact.core.revocation import RevocationList
    from volact.core.tickets import Activation

# volact.core.revocation is imported where a list is met: a machine that holds none (and every
# status() there) does not pay for it (issue 18).

SUFFIX = ".revocations.token"
_SERIAL = re.compile(r"^host-[0-9a-f]{24}$")  # what may name a file: a host key's serial


def _path(state: StateDir, descriptor: ProductDescriptor, host_key: str) -> Path:
    # host_key is a certificate's key serial (``host-`` and hex digits), safe in a file name.
    return state.directory / f"{descriptor.vendor_id}.{host_key}{SUFFIX}"


def _verified(descriptor: ProductDescriptor, token: str, host_key: str) -> RevocationList | None:
    return _verify(token, tuple(descriptor.root_keys), descriptor.vendor_id, host_key)


@functools.lru_cache(maxsize=8)
def _verify(
    token: str, root_keys: tuple[str, ...], vendor_id: str, host_key: str
) -> RevocationList | None:
    """The list in ``token`` if it verifies (None if not). A pure function of its arguments,
    memoised: ``status()`` meets the same list every time, and verifying it again would
    double the cost of a status."""
    from volact.core import revocation

    try:
        keys = [VerifyKey.from_paserk(key) for key in root_keys]
        return revocation.verify_revocation_list(
            token, keys, vendor_id=vendor_id, host_key=host_key
        )
    except (VolactError, KeyFormatError):
        return None


def held(state: StateDir, descriptor: ProductDescriptor, host_key: str) -> RevocationList | None:
    """The newest list of ``host_key`` (a host key serial) this machine has met for the
    descriptor's vendor (None: none)."""
    if not _SERIAL.match(host_key):
        return None
    path = _path(state, descriptor, host_key)
    try:
        token = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        # None, or a damaged file (not text): as good as none, and the next list replaces it.
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}", {"path": str(path)}) from exc
    return _verified(descriptor, token, host_key)


def observe(
    state: StateDir, descriptor: ProductDescriptor, offered: Any, host_key: str
) -> RevocationList | None:
    """Keep ``offered`` (a token from the answer of a host certified with ``host_key``, or
    None) if it verifies as ``host_key``'s list and is newer than the list held of that key;
    returns the newest list held of ``host_key`` afterwards. Never raises for a bad offer: a
    host that sends garbage, or another key's list, is judged by its ticket and the list held
    of its own key, not by what it sent."""
    candidate = (
        _verified(descriptor, offered, host_key)
        if isinstance(offered, str) and _SERIAL.match(host_key)
        else None
    )
    if candidate is None:
        return held(state, descriptor, host_key)
    from volact.core import revocation

    path = _path(state, descriptor, host_key)
    try:
        with state.lock():
            current = held(state, descriptor, host_key)
            kept = revocation.newest(current, candidate)
            if kept is candidate:
                write_bytes_atomic(path, (candidate.token + "\n").encode("ascii"), mode=0o644)
    except (OSError, StorageError):
        # A read-only state directory: the list still judges this answer, and the next
        # answer that carries it offers it again.
        return revocation.newest(held(state, descriptor, host_key), candidate)
    return kept


def check(
    state: StateDir, descriptor: ProductDescriptor, activation: Activation, offered: Any = None
) -> None:
    """Raise ``host_revoked`` if the newest list held (after taking ``offered``) names the
    activation's host certificate or its host key (the list of the certificate's host key: only
    that one judges it). A MAK activation has no host: it passes."""
    if activation.certificate is None:
        return
    serial = activation.certificate.key_serial
    revocations = observe(state, descriptor, offered, serial)
    others = _other_keys_lists(state, descriptor, serial)
    if revocations is None and not others:  # no list held: nothing is revoked
        return
    from volact.core import revocation

    revocation.check_certificate(revocations, activation.certificate, others)


def _other_keys_lists(
    state: StateDir, descriptor: ProductDescriptor, host_key: str
) -> tuple[RevocationList, ...]:
    """The lists held of the vendor's other host keys (the same customer's: a client meets one
    customer's hosts). Only the host keys they revoke count for ``host_key``'s hosts: a host
    re-certified with the customer's new key carries the revocation of its old key."""
    prefix = f"{descriptor.vendor_id}."
    found = []
    try:
        names = [path.name for path in state.directory.glob(f"{prefix}host-*{SUFFIX}")]
    except OSError:
        return ()
    for name in sorted(names):
        serial = name[len(prefix) : -len(SUFFIX)]
        if serial != host_key:
            listed = held(state, descriptor, serial)
            if listed is not None:
                found.append(listed)
    return tuple(found)
