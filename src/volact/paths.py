"""Where volact keeps its files: ``--dir``, else an environment variable, else a system default.

| area   | variable              | default                                                  |
|--------|-----------------------|----------------------------------------------------------|
| vendor | ``VOLACT_VENDOR_DIR`` | ``/var/lib/volact/vendor`` when writable, else the user's  |
|        |                       | data dir + /vendor                                       |
| host   | ``VOLACT_HOST_DIR``   | ``/var/lib/volact/host`` when writable, else the user's    |
|        |                       | data dir + /host                                         |
| client | ``VOLACT_STATE_DIR``  | the machine-wide folder below, always                    |

The client's state is the **device's**, shared by every user of the machine (one CMID per
device), so its default is the system's machine-wide folder (platformdirs' site folder) and
there is no per-user fallback:

* Linux and other Unix systems: ``/var/lib/volact/client``;
* Windows: ``C:\\ProgramData\\volact\\client`` (``%ProgramData%``);
* macOS: ``/Library/Application Support/volact/client``.

A user who cannot write it still reads the status there; a write gets a ``storage_error`` naming
the fix (:meth:`volact.client.state.StateDir.lock`, docs/integration.md "Machine-wide state").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePath

ENV_VARS = {
    "vendor": "VOLACT_VENDOR_DIR",
    "host": "VOLACT_HOST_DIR",
    "client": "VOLACT_STATE_DIR",
}
SYSTEM_ROOT = Path("/var/lib/volact")
APP_NAME = "volact"


def _writable(path: Path) -> bool:
    """True when ``path`` exists and is writable, or could be created by this user."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def client_system_dir(platform: str | None = None) -> PurePath:
    """The machine-wide client state folder of ``platform`` (default: this system's)."""
    system = sys.platform if platform is None else platform
    if system == "win32":
        # platformdirs only here: Linux, where `volact client status` must start fast, needs none.
        from platformdirs.windows import Windows

        return PurePath(Windows(APP_NAME, appauthor=False).site_data_dir) / "client"
    if system == "darwin":
        from platformdirs.macos import MacOS

        return PurePath(MacOS(APP_NAME).site_data_dir) / "client"
    return SYSTEM_ROOT / "client"  # what platformdirs' Unix site state folder gives


def default_dir(area: str) -> Path:
    """The directory for ``area`` ("vendor", "host" or "client") when none is given."""
    value = os.environ.get(ENV_VARS[area])
    if value:
        return Path(value).expanduser()
    if area == "client":
        return Path(client_system_dir())
    system = SYSTEM_ROOT / area
    if _writable(system):
        return system
    import platformdirs  # Only here: `volact client status` must start fast.

    return Path(platformdirs.user_data_dir(APP_NAME)) / area


def resolve_dir(area: str, explicit: str | os.PathLike[str] | None) -> Path:
    return Path(explicit).expanduser() if explicit else default_dir(area)
