"""Where volact keeps its files: ``--dir``, else an environment variable, else a system default.

| area   | variable            | system default (when writable)  | otherwise                     |
|--------|---------------------|---------------------------------|-------------------------------|
| vendor | ``VOLACT_VENDOR_DIR`` | ``/var/lib/volact/vendor``     | the user's data dir + /vendor |
| host   | ``VOLACT_HOST_DIR``   | ``/var/lib/volact/host``       | the user's data dir + /host   |
| client | ``VOLACT_STATE_DIR``  | ``/var/lib/volact/client``     | the user's data dir + /client |
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VARS = {
    "vendor": "VOLACT_VENDOR_DIR",
    "host": "VOLACT_HOST_DIR",
    "client": "VOLACT_STATE_DIR",
}
SYSTEM_ROOT = Path("/var/lib/volact")


def _writable(path: Path) -> bool:
    """True when ``path`` exists and is writable, or could be created by this user."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def default_dir(area: str) -> Path:
    """The directory for ``area`` ("vendor", "host" or "client") when none is given."""
    value = os.environ.get(ENV_VARS[area])
    if value:
        return Path(value).expanduser()
    system = SYSTEM_ROOT / area
    if _writable(system):
        return system
    import platformdirs  # Only here: `volact client status` must start fast.

    return Path(platformdirs.user_data_dir("volact")) / area


def resolve_dir(area: str, explicit: str | os.PathLike[str] | None) -> Path:
    return Path(explicit).expanduser() if explicit else default_dir(area)
