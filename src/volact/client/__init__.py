"""The client SDK that a vendor's app embeds (SPEC §8).

::

    from volact.client import License

    lic = License.from_descriptor("writer.json")  # state dir: VOLACT_STATE_DIR or the default
    st = lic.status()   # offline, fast: st.state, st.valid_until, st.grace_ends_at, st.reason
    lic.activate()      # discover a host and activate; raises a typed error with its code
    lic.start_renewal() # background renewal at the intervals of SPEC §3

Every error is a :class:`VolactError` with a stable ``code`` (``volact explain CODE``); the
typed errors an app most often meets are exported here. See ``docs/client.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from volact.client.license import License
from volact.client.settings import installed_products, update_settings
from volact.client.status import LicenseStatus
from volact.core.errors import (
    BadRequest,
    ClientBlocked,
    ClockTampered,
    CountInsufficient,
    HostNotActivated,
    HostUnreachable,
    InvalidHostCertificate,
    InvalidKey,
    InvalidTicket,
    KeyExhausted,
    NoHostFound,
    NotInstalled,
    ProductNotHosted,
    RateLimited,
    RearmLimit,
    StorageError,
    TimeSkew,
    VolactError,
)
from volact.core.states import State

if TYPE_CHECKING:
    from volact.client.activation import Attempt
    from volact.client.diagnosis import Diagnosis

# What only activating and diagnosing need (the discovery, DNS and transport code under them)
# is imported when first asked for, so that an app's start-up (``import volact.client``, then
# ``License...status()``) pays for none of it (issue 18).
_LAZY = {"Attempt": "volact.client.activation", "Diagnosis": "volact.client.diagnosis"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Attempt",
    "BadRequest",
    "ClientBlocked",
    "ClockTampered",
    "CountInsufficient",
    "Diagnosis",
    "HostNotActivated",
    "HostUnreachable",
    "InvalidHostCertificate",
    "InvalidKey",
    "InvalidTicket",
    "KeyExhausted",
    "License",
    "LicenseStatus",
    "NoHostFound",
    "NotInstalled",
    "ProductNotHosted",
    "RateLimited",
    "RearmLimit",
    "State",
    "StorageError",
    "TimeSkew",
    "VolactError",
    "installed_products",
    "update_settings",
]
