"""The client's copy of the vendor's revocation list (issue 20; the format and its rules are
:mod:`volact.core.revocation`).

A client keeps the newest list it has met in ``<vendor_id>.revocations.token`` in its state
directory (one per vendor: the list is the vendor's, whatever the product). Every activation
answer from a host may carry a list (the field ``"revocations"``): it is verified under the
product descriptor's root keys and kept if its sequence is higher than the one held, so that
the client learns of a revocation from any host of the organisation and can never be rolled
back to an older list. Then the answering host's certificate is checked against the newest
list held: a revoked (or superseded) host is refused with ``host_revoked``, and the client
tries the next host. :meth:`License.status` checks a stored activation the same way, so a
ticket from a host revoked since no longer counts.

Deleting the file is what a local administrator can do (docs/security.md): it forgets the
list until the next answer from an up-to-date host brings it back.
"""

from __future__ import annotations

import functools
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


def _path(state: StateDir, descriptor: ProductDescriptor) -> Path:
    return state.directory / f"{descriptor.vendor_id}{SUFFIX}"


def _verified(descriptor: ProductDescriptor, token: str) -> RevocationList | None:
    return _verify(token, tuple(descriptor.root_keys), descriptor.vendor_id)


@functools.lru_cache(maxsize=8)
def _verify(token: str, root_keys: tuple[str, ...], vendor_id: str) -> RevocationList | None:
    """The list in ``token`` if it verifies (None if not). A pure function of its arguments,
    memoised: ``status()`` meets the same list every time, and verifying it again would
    double the cost of a status."""
    from volact.core import revocation

    try:
        keys = [VerifyKey.from_paserk(key) for key in root_keys]
        return revocation.verify_revocation_list(token, keys, vendor_id=vendor_id)
    except (VolactError, KeyFormatError):
        return None


def held(state: StateDir, descriptor: ProductDescriptor) -> RevocationList | None:
    """The newest list this machine has met for the descriptor's vendor (None: none)."""
    path = _path(state, descriptor)
    try:
        token = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        # None, or a damaged file (not text): as good as none, and the next list replaces it.
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}", {"path": str(path)}) from exc
    return _verified(descriptor, token)


def observe(state: StateDir, descriptor: ProductDescriptor, offered: Any) -> RevocationList | None:
    """Keep ``offered`` (a token from a host's answer, or None) if it verifies and is newer
    than the list held; returns the newest list held afterwards. Never raises for a bad
    offer: a host that sends garbage is judged by its ticket, not by its list."""
    candidate = _verified(descriptor, offered) if isinstance(offered, str) else None
    if candidate is None:
        return held(state, descriptor)
    from volact.core import revocation

    try:
        with state.lock():
            current = held(state, descriptor)
            kept = revocation.newest(current, candidate)
            if kept is candidate:
                write_bytes_atomic(
                    _path(state, descriptor), (candidate.token + "\n").encode("ascii"), mode=0o644
                )
    except (OSError, StorageError):
        # A read-only state directory: the list still judges this answer, and the next
        # answer that carries it offers it again.
        return revocation.newest(held(state, descriptor), candidate)
    return kept


def check(
    state: StateDir, descriptor: ProductDescriptor, activation: Activation, offered: Any = None
) -> None:
    """Raise ``host_revoked`` if the newest list held (after taking ``offered``) names the
    activation's host certificate or its host key. A MAK activation has no host: it passes."""
    if activation.certificate is None:
        return
    revocations = observe(state, descriptor, offered)
    if revocations is None:  # no list held: nothing is revoked (what check_certificate says)
        return
    from volact.core import revocation

    revocation.check_certificate(revocations, activation.certificate)
