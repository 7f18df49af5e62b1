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

from volact.client.activation import Attempt
from volact.client.diagnosis import Diagnosis
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
