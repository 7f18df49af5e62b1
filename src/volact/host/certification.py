"""The host's side of certification: set-up, requests to the vendor and installing its answer.

:func:`make_host_request` signs a request with the host's own key; :func:`certify_host_online`
sends it to the vendor service through the :class:`~volact.net.transport.Transport` port and
installs the answer; :func:`write_host_request_file` and :func:`install_host_response` are the
offline twin (the host remembers the ids of the requests it wrote, so a response is accepted
once, and only by the host that asked). The file formats are :mod:`volact.core.offline`.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from volact.core import offline
from volact.core.errors import BadRequest, NotFound, ReplayedRequest, StorageError, VolactError
from volact.core.keys import Channel, parse_key, require_channel
from volact.core.protocol import HOST_ACTIVATIONS_PATH
from volact.core.tickets import HostCertificate, verify_certificate
from volact.crypto import KeyFormatError, SigningKey, VerifyKey
from volact.fileio import read_text, write_atomic
from volact.host.identity import HostFiles, HostSettings
from volact.net.transport import Transport, service_url, vendor_transport

PENDING_REQUESTS_FILE = "vendor-requests.json"
MAX_PENDING_REQUESTS = 16


def init_host(
    files: HostFiles, key_text: str, *, vendor_url: str | None = None
) -> tuple[HostSettings, bool]:
    """Set up (or re-key) the host in ``files`` with a HOST key; returns (settings, created).

    The key must be a host key (a MAK or GVLK raises ``invalid_key``: "this is a MAK, not a
    host key"). A new host gets a random host id and an Ed25519 signing key (0600); an
    existing host keeps both and only takes the new key (and vendor URL, if given).
    """
    key = parse_key(key_text)
    require_channel(key, Channel.HOST)
    if vendor_url is not None:
        service_url(vendor_url, "")
    if files.exists():
        settings = files.settings()
        files.signing_key()  # An existing host must still have its key.
        settings.host_key = key.text
        if vendor_url is not None:
            settings.vendor_url = vendor_url
        files.save_settings(settings)
        return settings, False
    try:
        files.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        files.save_signing_key(SigningKey.generate())
        settings = HostSettings(host_id=str(uuid.uuid4()), host_key=key.text, vendor_url=vendor_url)
        files.save_settings(settings)
    except OSError as exc:
        raise StorageError(f"cannot write the host directory {files.directory}: {exc}") from exc
    return settings, True


def host_key_serial(key_text: str) -> str:
    """The serial of a host key (what certificates and the vendor's records show)."""
    return parse_key(key_text).serial


def make_host_request(
    files: HostFiles, *, now: int, machine: str | None = None, request_id: str | None = None
) -> offline.HostActivationRequest:
    """A host activation request for the host in ``files``, signed with its own key."""
    settings = files.settings()
    signing_key = files.signing_key()
    request = offline.HostActivationRequest(
        request_id=request_id or str(uuid.uuid4()),
        host_id=settings.host_id,
        host_key=signing_key.public_key.paserk,
        key_serial=host_key_serial(settings.host_key),
        machine=(machine or socket.gethostname() or "unknown")[:255],
        created_at=now,
    )
    # The request proves the host key without holding it (the file may be seen by others).
    proved = offline.make_host_proof(request, parse_key(settings.host_key).text)
    return offline.sign_host_request(signing_key, proved)


def _pending_path(files: HostFiles) -> Path:
    return files.directory / PENDING_REQUESTS_FILE


def _pending(files: HostFiles) -> list[dict[str, Any]]:
    path = _pending_path(files)
    try:
        data = json.loads(read_text(path, what="pending requests file"))
    except NotFound:
        return []
    except ValueError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    pending = data.get("pending") if isinstance(data, dict) else None
    return [item for item in pending or [] if isinstance(item, dict)]


def _save_pending(files: HostFiles, pending: list[dict[str, Any]]) -> None:
    path = _pending_path(files)
    try:
        write_atomic(path, json.dumps({"pending": pending[-MAX_PENDING_REQUESTS:]}, indent=2))
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc


def write_host_request_file(
    files: HostFiles, *, now: int, machine: str | None = None
) -> offline.HostActivationRequest:
    """Make an offline request and remember its id (the text is ``request.to_file()``).

    The host accepts a response only for a request it remembers (the latest
    :data:`MAX_PENDING_REQUESTS`), and each response only once.
    """
    request = make_host_request(files, now=now, machine=machine)
    pending = [item for item in _pending(files) if item.get("request_id") != request.request_id]
    pending.append({"request_id": request.request_id, "created_at": now})
    _save_pending(files, pending)
    return request


def install_host_response(
    files: HostFiles,
    source: str | bytes | dict[str, Any],
    *,
    now: int,
    vendor_url: str | None = None,
    expected_request_id: str | None = None,
) -> HostCertificate:
    """Verify a host activation response and install its certificate, or change nothing.

    Checks: the vendor's signature over the response; the certificate under the root keys it
    carries; that it names THIS host's id and public key (``bad_request`` otherwise); that it
    answers a request this host made and has not installed yet (``replayed_request``); that it
    is not older than the installed certificate and is valid now. Then the certificate, the
    vendor id and the vendor's root keys are saved in the host directory.
    """
    response, certificate = offline.read_host_response(source)
    settings = files.settings()
    own_key = files.signing_key().public_key.paserk
    if response.host_id != settings.host_id or certificate.host_key != own_key:
        raise BadRequest(
            f"this response was made for host {response.host_id}, not for this host "
            f"({settings.host_id}); install it on the host that wrote the request",
            {"host_id": settings.host_id, "response_host_id": response.host_id},
        )
    pending = _pending(files)
    if expected_request_id is not None:
        if response.request_id != expected_request_id:
            raise ReplayedRequest("the vendor answered another request than the one sent")
    elif not any(item.get("request_id") == response.request_id for item in pending):
        raise ReplayedRequest(
            "this response answers a request this host has no record of, or one already "
            "installed; make a new request (`volact host activate --offline-request FILE`)",
            {"request_id": response.request_id},
        )
    installed = _installed_certificate(files, response.root_keys, response.vendor_id)
    if installed is not None and installed.issued_at > certificate.issued_at:
        raise ReplayedRequest(
            "this response holds an older certificate than the one installed; nothing changed"
        )
    if now > certificate.not_after:
        raise BadRequest("the certificate in this response has expired; make a new request")
    if now < certificate.not_before:
        raise BadRequest(
            "the certificate in this response is not valid yet: this host's clock is behind "
            "the vendor's; fix the clock (NTP) and install the response again"
        )
    updated = replace(
        settings,
        vendor_id=response.vendor_id,
        vendor_root_keys=list(response.root_keys),
        vendor_url=vendor_url if vendor_url is not None else settings.vendor_url,
    )
    try:
        files.save_settings(updated)
        files.save_certificate_token(certificate.token)
    except OSError as exc:
        raise StorageError(f"cannot write to the host directory {files.directory}: {exc}") from exc
    remaining = [item for item in pending if item.get("request_id") != response.request_id]
    if remaining != pending:
        _save_pending(files, remaining)
    return certificate


def _installed_certificate(
    files: HostFiles, root_keys: Iterable[str], vendor_id: str
) -> HostCertificate | None:
    try:
        token = files.certificate_token()
        return verify_certificate(
            token, [VerifyKey.from_paserk(key) for key in root_keys], vendor_id=vendor_id
        )
    except (VolactError, KeyFormatError):
        # No certificate, or one this vendor's keys do not verify: nothing newer to protect.
        return None


def certify_host_online(
    files: HostFiles,
    vendor_url: str,
    *,
    now: int,
    transport: Transport | None = None,
) -> HostCertificate:
    """Certify the host with the vendor service at ``vendor_url`` and install the certificate."""
    endpoint = service_url(vendor_url, HOST_ACTIVATIONS_PATH)
    request = make_host_request(files, now=now)
    answer = (transport or vendor_transport()).post_json(endpoint, request.to_json())
    return install_host_response(
        files, answer, now=now, vendor_url=vendor_url, expected_request_id=request.request_id
    )


def remember_request(files: HostFiles, request_id: str, now: int) -> None:
    """Remember a request id written to a file (a response to it is then accepted once); used
    by offline certificate renewal (:mod:`volact.host.certificate_renewal`) too."""
    pending = [item for item in _pending(files) if item.get("request_id") != request_id]
    pending.append({"request_id": request_id, "created_at": now})
    _save_pending(files, pending)
