"""The host's copy of the vendor's revocation list (issue 20; the format is
:mod:`volact.core.revocation`).

The host keeps the newest list of its own host key (the key that certified it, named in its
certificate: one list per host key) in ``revocations.token`` in its directory and sends it in
every activation answer (the field ``"revocations"``), so that a client learns of a
revocation from any host of the organisation. It gets a list:

* **online**: from the vendor service named in ``host.json`` (``vendor_url``), at start and then
  every :data:`FETCH_INTERVAL` (:func:`fetch_online`);
* **offline**: from a file the admin installs (``volact host install-revocations FILE``,
  :func:`install`), which a running host takes up within seconds.

A list is verified under the vendor root keys in ``host.json``, must be the list of this host's
key (another key's list is refused with ``bad_request`` and changes nothing), and replaces the
installed one only if its sequence is higher (rule 2 of :mod:`volact.core.revocation`): an older
file changes nothing. Several hosts sharing one database each keep their own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from volact.core import revocation
from volact.core.errors import BadRequest, NotFound, StorageError, VolactError
from volact.core.protocol import REVOCATIONS_PATH
from volact.core.revocation import RevocationList
from volact.core.tickets import verify_certificate
from volact.crypto import KeyFormatError, VerifyKey
from volact.fileio import write_atomic
from volact.host.identity import HostFiles, HostSettings
from volact.net.transport import Transport, service_url, vendor_transport

REVOCATIONS_FILE = "revocations.token"
FETCH_INTERVAL = 6 * 3600.0


def _path(files: HostFiles) -> Path:
    return files.directory / REVOCATIONS_FILE


def _root_keys(settings: HostSettings) -> list[VerifyKey]:
    if not settings.vendor_id or not settings.vendor_root_keys:
        raise NotFound(
            "this host was never certified, so it knows no vendor keys to check a revocation "
            "list with; run `volact host activate` first"
        )
    try:
        return [VerifyKey.from_paserk(key) for key in settings.vendor_root_keys]
    except KeyFormatError as exc:
        raise BadRequest(f"host.json: a vendor root key is unreadable: {exc}") from exc


def host_key_serial(files: HostFiles, settings: HostSettings) -> str:
    """The serial of the host key that certified this host (from its certificate): whose list
    this host keeps. Raises ``host_not_activated`` or ``bad_request``."""
    certificate = verify_certificate(
        files.certificate_token(), _root_keys(settings), vendor_id=settings.vendor_id
    )
    return certificate.key_serial


def verify(files: HostFiles, settings: HostSettings, token: str) -> RevocationList:
    """``token`` verified as the list of this host's vendor and host key. Raises BadRequest."""
    return revocation.verify_revocation_list(
        token,
        _root_keys(settings),
        vendor_id=settings.vendor_id or "",
        host_key=host_key_serial(files, settings),
    )


def load(files: HostFiles, settings: HostSettings) -> RevocationList | None:
    """The installed list (None: none installed, or one that no longer verifies, e.g. of
    another host key than the one that certified this host now)."""
    try:
        token = _path(files).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        # None, or a damaged file (not text): as good as none, and the next list replaces it.
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {_path(files)}: {exc}") from exc
    try:
        return verify(files, settings, token)
    except VolactError:
        return None  # e.g. the vendor's keys changed; the next list replaces it


def install(files: HostFiles, source: str | bytes | dict[str, Any]) -> tuple[RevocationList, bool]:
    """Install a ``volact-revocation-list`` file (or the vendor service's answer) if newer.

    Returns the list now installed and whether it changed. A list that does not verify raises
    ``bad_request`` and changes nothing; an older or equal one changes nothing.
    """
    settings = files.settings()
    offered = verify(files, settings, revocation.read_revocation_file(_without_ok(source)))
    held = load(files, settings)
    kept = revocation.newest(held, offered)
    assert kept is not None
    if kept is held:
        return kept, False
    try:
        write_atomic(_path(files), offered.token + "\n")
    except OSError as exc:
        raise StorageError(f"cannot write {_path(files)}: {exc}") from exc
    return offered, True


def _without_ok(source: str | bytes | dict[str, Any]) -> str | bytes | dict[str, Any]:
    if isinstance(source, dict):
        return {name: value for name, value in source.items() if name != "ok"}
    return source


def fetch_online(
    files: HostFiles, *, vendor_url: str | None = None, transport: Transport | None = None
) -> tuple[RevocationList, bool]:
    """Fetch the newest list of this host's key from the vendor service; install it if newer."""
    settings = files.settings()
    url = vendor_url or settings.vendor_url
    if not url:
        raise NotFound(
            "host.json names no vendor service (vendor_url); install the vendor's revocation "
            "list file instead (`volact host install-revocations FILE`)"
        )
    answer = (transport or vendor_transport()).post_json(
        service_url(url, REVOCATIONS_PATH),
        {"v": revocation.VERSION, "host_key": host_key_serial(files, settings)},
    )
    return install(files, answer)
