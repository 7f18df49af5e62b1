"""What hosts and clients call to talk to the vendor: online over HTTP, offline through files.

Host certification (``volact host activate``)
    :func:`make_host_request` signs a request with the host's own key; :func:`certify_host_online`
    sends it to the vendor service and installs the answer; :func:`write_host_request_file`
    and :func:`install_host_response` are the offline twin (the host remembers the ids of the
    requests it wrote, so a response is accepted once, and only by the host that asked).

MAK activation (``volact client activate`` with a MAK)
    :func:`activate_mak_online` posts SPEC §6's activation request to the vendor service and
    returns the verified activation. Offline: :func:`mak_request_file` writes one machine's
    request, :func:`merge_mak_request_files` merges request files (and batches) into one batch
    for the vendor (the proxy step), and :func:`read_mak_response` picks this machine's entry
    out of the vendor's response and verifies its ticket against the product descriptor.

Errors: the vendor's refusals come back as the same typed errors (``key_exhausted``, …); a
vendor service that cannot be reached raises ``host_unreachable`` naming the URL.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volact.core.descriptor import ProductDescriptor
from volact.core.errors import (
    BadRequest,
    HostUnreachable,
    NotFound,
    ReplayedRequest,
    StorageError,
    VolactError,
    error_from_code,
)
from volact.core.keys import Channel, parse_key, require_channel
from volact.core.protocol import ActivationRequest
from volact.core.tickets import Activation, HostCertificate, verify_activation, verify_certificate
from volact.crypto import KeyFormatError, SigningKey, VerifyKey
from volact.host.identity import HostFiles, HostSettings, write_atomic
from volact.vendor import offline

if TYPE_CHECKING:
    import httpx

__all__ = [
    "HOST_ACTIVATIONS_PATH",
    "MAK_ACTIVATIONS_PATH",
    "PENDING_REQUESTS_FILE",
    "activate_mak_online",
    "certify_host_online",
    "host_key_serial",
    "init_host",
    "install_host_response",
    "mak_request_file",
    "make_host_request",
    "merge_mak_request_files",
    "read_mak_response",
    "write_host_request_file",
]

HOST_ACTIVATIONS_PATH = "/v1/host-activations"
MAK_ACTIVATIONS_PATH = "/v1/mak-activations"
PENDING_REQUESTS_FILE = "vendor-requests.json"
MAX_PENDING_REQUESTS = 16
MAX_ANSWER_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = 30.0

# --- HTTP --------------------------------------------------------------------------------------


def _endpoint(url: str, path: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BadRequest(f"the vendor URL {url!r} must start with http:// or https://")
    return url.rstrip("/") + path


def _post(
    url: str,
    path: str,
    body: dict[str, Any],
    *,
    timeout: float,
    transport: httpx.BaseTransport | None,
) -> dict[str, Any]:
    """POST JSON to the vendor service; the answer object, or its error raised as typed."""
    import httpx  # Imported here: clients that only read their status never pay for it.

    endpoint = _endpoint(url, path)
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout) as http,
            http.stream("POST", endpoint, json=body) as answer,
        ):
            raw = b""
            for chunk in answer.iter_bytes():
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    raise BadRequest(f"the vendor service at {url} sent an oversized answer")
            status = answer.status_code
    except httpx.HTTPError as exc:
        raise HostUnreachable(
            f"cannot reach the vendor service at {url}: {exc or type(exc).__name__}",
            {"url": url},
        ) from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise BadRequest(
            f"{endpoint} answered HTTP {status} without a volact answer; is the vendor URL right?",
            {"url": url, "status": status},
        )
    error = data.get("error")
    if data.get("ok") is not True:
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            details = error.get("details")
            raise error_from_code(
                error["code"],
                str(error.get("message", "")),
                details if isinstance(details, dict) else {},
            )
        raise BadRequest(f"{endpoint} answered HTTP {status} with an unknown shape")
    return data


# --- host certification ------------------------------------------------------------------------


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
        _endpoint(vendor_url, "")
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
        raise StorageError(f"cannot write the host directory {files.directory}: {exc}") from None
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
        key=settings.host_key,
        machine=(machine or socket.gethostname() or "unknown")[:255],
        created_at=now,
    )
    return offline.sign_host_request(signing_key, request)


def _pending_path(files: HostFiles) -> Path:
    return files.directory / PENDING_REQUESTS_FILE


def _pending(files: HostFiles) -> list[dict[str, Any]]:
    path = _pending_path(files)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    pending = data.get("pending") if isinstance(data, dict) else None
    return [item for item in pending or [] if isinstance(item, dict)]


def _save_pending(files: HostFiles, pending: list[dict[str, Any]]) -> None:
    path = _pending_path(files)
    try:
        write_atomic(path, json.dumps({"pending": pending[-MAX_PENDING_REQUESTS:]}, indent=2))
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from None


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
        raise StorageError(f"cannot write to the host directory {files.directory}: {exc}") from None
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
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> HostCertificate:
    """Certify the host with the vendor service at ``vendor_url`` and install the certificate."""
    request = make_host_request(files, now=now)
    answer = _post(
        vendor_url, HOST_ACTIVATIONS_PATH, request.to_json(), timeout=timeout, transport=transport
    )
    return install_host_response(
        files, answer, now=now, vendor_url=vendor_url, expected_request_id=request.request_id
    )


def host_settings_summary(files: HostFiles) -> dict[str, Any]:
    """The host's settings without secrets (for ``--json`` output)."""
    data = asdict(files.settings())
    data.pop("host_key", None)
    return data


# --- MAK ---------------------------------------------------------------------------------------


def activate_mak_online(
    url: str,
    request: ActivationRequest,
    descriptor: ProductDescriptor,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> Activation:
    """Activate one machine with a MAK at the vendor service (``descriptor.activation_url``).

    Returns the activation after verifying the ticket offline against ``descriptor`` (root
    signature, product, CMID, fingerprint and nonce). Raises the vendor's typed error
    (``key_exhausted``, ``invalid_key``, ``time_skew``…), ``host_unreachable``, or
    ``invalid_ticket``.
    """
    answer = _post(
        url, MAK_ACTIVATIONS_PATH, request.to_json(), timeout=timeout, transport=transport
    )
    ticket = answer.get("ticket")
    if not isinstance(ticket, str):
        raise BadRequest("the vendor service's answer holds no ticket")
    return verify_activation(
        descriptor,
        ticket,
        None,
        cmid=request.cmid,
        fingerprint=request.fingerprint,
        nonce=request.nonce,
    )


def mak_request_file(request: ActivationRequest) -> str:
    """The offline request file of one machine (``volact-mak-request``)."""
    return offline.mak_request_file(request)


def merge_mak_request_files(sources: Iterable[str | bytes]) -> str:
    """Merge request files and batch files into one batch file (``volact-mak-batch``).

    Each machine (CMID and fingerprint) appears once, with its newest request. Raises
    ``bad_request`` naming the file (by position) that is not a MAK request or batch.
    """
    requests: list[ActivationRequest] = []
    for position, source in enumerate(sources, 1):
        try:
            requests.extend(offline.read_mak_requests(source))
        except BadRequest as error:
            error.message = f"file {position}: {error.message}"
            raise
    if not requests:
        raise BadRequest("no request files to merge")
    merged = offline.merge_mak_requests(requests)
    if len(merged) > offline.MAX_BATCH_ENTRIES:
        raise BadRequest(
            f"{len(merged)} machines are more than one batch holds ({offline.MAX_BATCH_ENTRIES}); "
            "split them into several batches"
        )
    return offline.mak_batch_file(merged)


def read_mak_response(
    source: str | bytes | dict[str, Any],
    descriptor: ProductDescriptor,
    *,
    cmid: str,
    fingerprint: str,
    nonce: str | None = None,
) -> Activation:
    """This machine's activation out of a vendor's MAK response file, verified.

    The entry is found by CMID and fingerprint. An entry holding an error raises it as the
    typed error (``key_exhausted``…); no entry raises ``not_found``; a ticket that does not
    verify (another vendor, another machine, another request's nonce) raises
    ``invalid_ticket`` or ``invalid_host_certificate``.
    """
    _, entries = offline.read_mak_response(source)
    entry = next(
        (item for item in entries if item.cmid == cmid and item.fingerprint == fingerprint), None
    )
    if entry is None:
        raise NotFound(
            f"the response has no entry for this machine (CMID {cmid}); was its request file "
            "in the batch?",
            {"cmid": cmid},
        )
    if entry.ticket is None:
        error = entry.error or {}
        raise error_from_code(
            str(error.get("code", "internal")),
            f"the vendor refused this machine: {error.get('message', '')}",
            error.get("details") or {},
        )
    return verify_activation(
        descriptor, entry.ticket, None, cmid=cmid, fingerprint=fingerprint, nonce=nonce
    )
