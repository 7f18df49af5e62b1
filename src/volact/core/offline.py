"""The files exchanged with the vendor, online and offline (docs/file-formats.md).

Every online exchange with the vendor service carries exactly the offline files, so one parser
serves both and what is tested offline is what runs online:

``volact-host-activation-request`` (host → vendor)
    ``{"format", "v": 2, "token"}``; the token is a PASETO ``v4.public`` of kind
    ``host_activation_request`` signed by the host's own signing key (proof of possession: the
    payload names that key, and any change breaks the signature). Payload: ``v``,
    ``request_id``, ``host_id``, ``host_key`` (PASERK), ``key_serial`` (the host key's serial,
    a one-way hash), ``machine``, ``created_at``, ``proof``. The host key itself is not in
    the file: ``proof`` is an HMAC-SHA256 of the other fields under a key derived from the host
    key with HKDF (:func:`volact.crypto.secret_proof`), which the vendor, who issued the key,
    recomputes (:func:`check_host_proof`). It is the body of ``POST /v1/host-activations``.
    Version 1 carried the host key in the token and is refused (``unsupported_version``).
``volact-host-activation-response`` (vendor → host)
    ``{"format", "v": 1, "token"}``; kind ``host_activation_response``, signed by the vendor's
    active root key. Payload: ``v``, ``request_id``, ``host_id``, ``vendor_id``, ``vendor_name``,
    ``root_keys`` (every non-retired root key), ``certificate`` (the host certificate token).
    The online answer is the same object with ``"ok": true``.
``volact-mak-request`` / ``volact-mak-batch`` (client or proxy → vendor)
    One activation request (``"request": {…}``), or many (``"requests": […]``), each the body
    of SPEC §6's activation request with a MAK as ``key``. Not signed: a client has no key of
    its own, and a changed request is simply another request, checked like any other.
``volact-mak-response`` (vendor → proxy → clients)
    ``{"format", "v": 1, "vendor_id", "issued_at", "entries": [{"cmid", "fingerprint",
    "ticket"} | {"cmid", "fingerprint", "error": {"code", "message", "details"}}]}``; each
    ticket is signed by a root key, so each machine checks its own entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from volact import crypto
from volact.core import validate
from volact.core.errors import BadRequest, NextStep, UnsupportedVersion, VolactError
from volact.core.protocol import ActivationRequest, parse_activation_request
from volact.core.tickets import HostCertificate, verify_certificate

FILE_VERSION = 1
# The host activation request is at version 2: version 1 carried the secret host key.
HOST_REQUEST_VERSION = 2
HOST_PROOF_PURPOSE = "volact host activation request proof v2"
HOST_REQUEST_FORMAT = "volact-host-activation-request"
HOST_RESPONSE_FORMAT = "volact-host-activation-response"
MAK_REQUEST_FORMAT = "volact-mak-request"
MAK_BATCH_FORMAT = "volact-mak-batch"
MAK_RESPONSE_FORMAT = "volact-mak-response"
HOST_RENEWAL_REQUEST_FORMAT = "volact-host-renewal-request"  # volact.core.host_renewal
REQUEST_FORMATS = (HOST_REQUEST_FORMAT, MAK_REQUEST_FORMAT, MAK_BATCH_FORMAT)

HOST_REQUEST_KIND = "host_activation_request"
HOST_RESPONSE_KIND = "host_activation_response"

MAX_HOST_FILE_BYTES = 64 * 1024
MAX_MAK_FILE_BYTES = 4 * 1024 * 1024
MAX_BATCH_ENTRIES = 1000
MAX_TOKEN_CHARS = 16 * 1024
MAX_ROOT_KEYS = 16

# Whoever reads the file (the vendor's CLI or service), the one who acts is the host's admin.
_NEW_HOST_REQUEST = NextStep(
    cli="upgrade volact on the host and make a new request there: "
    "`volact host activate --offline-request FILE`",
    sdk="upgrade volact on the host and make a new request there: "
    "`volact host activate --offline-request FILE`",
)
_VERSIONS = {HOST_REQUEST_FORMAT: HOST_REQUEST_VERSION}  # every other file is at FILE_VERSION
_NAMES = {
    HOST_REQUEST_FORMAT: "host activation request",
    HOST_RESPONSE_FORMAT: "host activation response",
    MAK_REQUEST_FORMAT: "MAK activation request",
    MAK_BATCH_FORMAT: "MAK activation batch",
    MAK_RESPONSE_FORMAT: "MAK activation response",
    HOST_RENEWAL_REQUEST_FORMAT: "host renewal request",
}


# --- reading files ---------------------------------------------------------------------------


def parse_file(
    source: str | bytes | Mapping[str, Any], *, expected: Iterable[str], limit: int
) -> dict[str, Any]:
    """Parse a volact file (text, bytes or an already-decoded object) of one of ``expected``
    formats and version 1. Raises :class:`BadRequest` or :class:`UnsupportedVersion` with a
    message that says what the file is, or is not."""
    wanted = tuple(expected)
    what = " or ".join(_NAMES[name] for name in wanted)
    if isinstance(source, str | bytes):
        if len(source) > limit:
            raise BadRequest(f"the file is larger than {limit} bytes; it is not a {what} file")
        try:
            decoded = json.loads(source)
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise BadRequest(
                f"the file is not valid JSON (damaged or truncated?); expected a {what} file"
            ) from exc
    else:
        # An online body may be any JSON value, not only an object.
        decoded = dict(source) if isinstance(source, Mapping) else source
    if not isinstance(decoded, dict):
        raise BadRequest(f"the file is not a {what} file (not a JSON object)")
    file_format = decoded.get("format")
    if file_format not in wanted:
        found = _NAMES.get(file_format) if isinstance(file_format, str) else None
        described = f"a {found} file" if found else "not a volact file of a known kind"
        raise BadRequest(
            f"this file is {described}; expected a {what} file",
            {"format": file_format if isinstance(file_format, str) else None},
        )
    version = decoded.get("v")
    supported = _VERSIONS.get(file_format, FILE_VERSION)
    if version != supported:
        if file_format == HOST_REQUEST_FORMAT and version == 1:
            raise UnsupportedVersion(
                "this host activation request file has version 1, an old format that carried "
                "the secret host key; it is no longer accepted, and the host key is exposed if "
                "the old file was seen by others",
                {"supported": [supported], "version": 1},
                next_step=_NEW_HOST_REQUEST,
            )
        raise UnsupportedVersion(
            f"this {_NAMES[file_format]} file has version {version!r}; this program reads "
            f"version {supported} (upgrade volact)",
            {"supported": [supported]},
        )
    return decoded


def _token_payload(data: dict[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    token = validate.string(data, "token", max_len=MAX_TOKEN_CHARS)
    try:
        unverified = json.loads(crypto.unverified_payload(token))
    except (crypto.SignatureError, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the {what}'s signed token is damaged (not readable)") from exc
    if not isinstance(unverified, dict):
        raise BadRequest(f"the {what}'s signed token does not hold an object")
    return token, unverified


def _check_fields(
    payload: dict[str, Any], allowed: Iterable[str], what: str, version: int = FILE_VERSION
) -> None:
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise BadRequest(f"the {what} has unknown field(s): {', '.join(unknown[:5])}")
    if payload.get("v") != version:
        raise UnsupportedVersion(
            f"the {what} has version {payload.get('v')!r}; this program reads version {version}"
        )


def _verify_signed(
    token: str, kind: str, keys_text: Iterable[str], failure: str
) -> tuple[dict[str, Any], list[crypto.VerifyKey]]:
    """The payload of ``token`` verified under one of ``keys_text`` (PASERK), and those keys.
    A malformed key or a signature that does not verify raises ``BadRequest(failure)``."""
    try:
        keys = [crypto.VerifyKey.from_paserk(text) for text in keys_text]
        return crypto.verify(token, kind, keys), keys
    except (crypto.SignatureError, crypto.KeyFormatError) as exc:
        raise BadRequest(failure) from exc


class _SignedFile:
    """What the two signed files share: the payload their token signs (the file version and
    every field but the token, in order), the file text and the file as an object."""

    FORMAT: ClassVar[str]
    VERSION: ClassVar[int] = FILE_VERSION
    NOUN: ClassVar[str]  # "request" or "response", for the error on an unsigned one
    __dataclass_fields__: ClassVar[dict[str, Any]]  # each subclass is a dataclass
    token: str

    @classmethod
    def payload_fields(cls) -> tuple[str, ...]:
        """The keys of the payload (and the only ones a reader accepts)."""
        return ("v", *(item.name for item in fields(cls) if item.name != "token"))

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": self.VERSION}
        for name in self.payload_fields()[1:]:
            value = getattr(self, name)
            data[name] = list(value) if isinstance(value, tuple) else value
        return data

    def to_file(self) -> str:
        if not self.token:
            raise ValueError(f"the {self.NOUN} is not signed")
        return json.dumps(self.to_json(), indent=2) + "\n"

    def to_json(self) -> dict[str, Any]:
        """The file as an object: the body of ``POST /v1/host-activations`` for a request, the
        online answer (with ``"ok": true``) for a response."""
        return {"format": self.FORMAT, "v": self.VERSION, "token": self.token}


# --- host activation request -----------------------------------------------------------------


@dataclass(frozen=True)
class HostActivationRequest(_SignedFile):
    """A host asking the vendor for a certificate (signed by the host's own key).

    It names the host key by its serial and proves knowing it with ``proof``; the key itself
    is never in the request (:func:`make_host_proof`, :func:`check_host_proof`).
    """

    FORMAT: ClassVar[str] = HOST_REQUEST_FORMAT
    VERSION: ClassVar[int] = HOST_REQUEST_VERSION
    NOUN: ClassVar[str] = "request"

    request_id: str
    host_id: str
    host_key: str  # PASERK k4.public of the host's signing key
    key_serial: str  # the host key's serial (a one-way hash of it)
    machine: str
    created_at: int
    proof: str = ""  # HMAC of the other fields under a key derived from the host key
    token: str = field(default="", compare=False)

    def proved(self) -> dict[str, Any]:
        """What ``proof`` covers: every payload field but the proof."""
        return {name: value for name, value in self.payload().items() if name != "proof"}


def make_host_proof(request: HostActivationRequest, host_key_text: str) -> HostActivationRequest:
    """``request`` with the proof that its maker knows ``host_key_text`` (the key's text)."""
    return replace(
        request, proof=crypto.secret_proof(host_key_text, HOST_PROOF_PURPOSE, request.proved())
    )


def check_host_proof(request: HostActivationRequest, host_key_text: str) -> bool:
    """Whether the request proves knowing ``host_key_text`` (the vendor's copy of the key)."""
    return crypto.proof_matches(request.proof, host_key_text, HOST_PROOF_PURPOSE, request.proved())


def sign_host_request(
    host_signing_key: crypto.SigningKey, request: HostActivationRequest
) -> HostActivationRequest:
    if request.host_key != host_signing_key.public_key.paserk:
        raise ValueError("the request must name the key that signs it")
    if not request.proof:
        raise ValueError("the request must carry its proof of the host key")
    return replace(
        request, token=crypto.sign(host_signing_key, HOST_REQUEST_KIND, request.payload())
    )


def read_host_request(source: str | bytes | Mapping[str, Any]) -> HostActivationRequest:
    """Parse and verify a host activation request (file text, bytes or the decoded body).

    The signature must verify under the host key the request names: a request changed after
    the host signed it, by a single byte, raises :class:`BadRequest`. The proof of the host
    key is the vendor's to check (:func:`check_host_proof`): only the vendor knows the key.
    """
    data = parse_file(source, expected=[HOST_REQUEST_FORMAT], limit=MAX_HOST_FILE_BYTES)
    token, unverified = _token_payload(data, "host activation request")
    host_key = validate.string(unverified, "host_key", max_len=128)
    verified, _ = _verify_signed(
        token,
        HOST_REQUEST_KIND,
        [host_key],
        "the host activation request's signature does not verify: the file was changed after "
        "the host made it, or is damaged; make a new request on the host",
    )
    _check_fields(
        verified,
        HostActivationRequest.payload_fields(),
        "host activation request",
        HOST_REQUEST_VERSION,
    )
    return HostActivationRequest(
        request_id=validate.uuid_text(verified, "request_id"),
        host_id=validate.string(verified, "host_id", max_len=64),
        host_key=host_key,
        key_serial=validate.string(verified, "key_serial", max_len=64),
        machine=validate.string(verified, "machine", max_len=255),
        created_at=validate.integer(verified, "created_at", minimum=0),
        proof=validate.base64url(verified, "proof", min_bytes=32, max_bytes=32),
        token=token,
    )


# --- host activation response ----------------------------------------------------------------


@dataclass(frozen=True)
class HostActivationResponse(_SignedFile):
    """The vendor's answer: the certificate, the vendor's id and its root keys (root-signed)."""

    FORMAT: ClassVar[str] = HOST_RESPONSE_FORMAT
    NOUN: ClassVar[str] = "response"

    request_id: str
    host_id: str
    vendor_id: str
    vendor_name: str
    root_keys: tuple[str, ...]
    certificate: str
    token: str = field(default="", compare=False)


def sign_host_response(
    root: crypto.SigningKey, response: HostActivationResponse
) -> HostActivationResponse:
    if root.public_key.paserk not in response.root_keys:
        raise ValueError("the signing root key must be listed in the response")
    return replace(response, token=crypto.sign(root, HOST_RESPONSE_KIND, response.payload()))


def read_host_response(
    source: str | bytes | Mapping[str, Any],
) -> tuple[HostActivationResponse, HostCertificate]:
    """Parse and verify a host activation response (file text, bytes or the online answer).

    The response must be signed by one of the root keys it lists, and the certificate must
    verify under them and name the same vendor and host. Any change raises :class:`BadRequest`
    (or ``invalid_host_certificate`` for a certificate that fails on its own). Whether the
    response is for *this* host is the caller's check (see
    ``volact.host.certification.install_host_response``).
    """
    data = parse_file(source, expected=[HOST_RESPONSE_FORMAT], limit=MAX_HOST_FILE_BYTES)
    token, unverified = _token_payload(data, "host activation response")
    keys_text = validate.string_list(unverified, "root_keys", max_items=MAX_ROOT_KEYS)
    verified, keys = _verify_signed(
        token,
        HOST_RESPONSE_KIND,
        keys_text,
        "the host activation response's signature does not verify: the file was changed after "
        "the vendor made it, or is damaged; ask the vendor for the response again",
    )
    _check_fields(verified, HostActivationResponse.payload_fields(), "host activation response")
    response = HostActivationResponse(
        request_id=validate.uuid_text(verified, "request_id"),
        host_id=validate.string(verified, "host_id", max_len=64),
        vendor_id=validate.identifier(verified, "vendor_id"),
        vendor_name=validate.string(verified, "vendor_name", max_len=200),
        root_keys=tuple(validate.string_list(verified, "root_keys", max_items=MAX_ROOT_KEYS)),
        certificate=validate.string(verified, "certificate", max_len=MAX_TOKEN_CHARS),
        token=token,
    )
    certificate = verify_certificate(response.certificate, keys, vendor_id=response.vendor_id)
    if certificate.host_id != response.host_id:
        raise BadRequest("the response's certificate names another host than the response")
    return response, certificate


# --- MAK requests, batches and responses -----------------------------------------------------


def mak_request_file(request: ActivationRequest) -> str:
    """The offline request file of one machine."""
    return (
        json.dumps(
            {"format": MAK_REQUEST_FORMAT, "v": FILE_VERSION, "request": request.to_json()},
            indent=2,
        )
        + "\n"
    )


def mak_batch_file(requests: Iterable[ActivationRequest]) -> str:
    """A batch file of many machines' requests (what a proxy sends to the vendor)."""
    listed = [request.to_json() for request in requests]
    if not 1 <= len(listed) <= MAX_BATCH_ENTRIES:
        raise BadRequest(f"a batch holds 1–{MAX_BATCH_ENTRIES} requests, not {len(listed)}")
    return json.dumps({"format": MAK_BATCH_FORMAT, "v": FILE_VERSION, "requests": listed}) + "\n"


def _parse_entry(raw: Any, position: int | None) -> ActivationRequest:
    try:
        return parse_activation_request(raw)
    except VolactError as error:
        if position is None:
            raise
        error.message = f"request {position} of the batch: {error.message}"
        error.details = {**error.details, "entry": position}
        raise


def read_mak_requests(source: str | bytes | Mapping[str, Any]) -> list[ActivationRequest]:
    """The requests of a MAK request file or batch file (each checked as SPEC §6 says)."""
    data = parse_file(
        source, expected=[MAK_REQUEST_FORMAT, MAK_BATCH_FORMAT], limit=MAX_MAK_FILE_BYTES
    )
    if data["format"] == MAK_REQUEST_FORMAT:
        return [_parse_entry(data.get("request"), None)]
    entries = data.get("requests")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
        raise BadRequest(f"field 'requests' must be a list of 1–{MAX_BATCH_ENTRIES} requests")
    return [_parse_entry(raw, position) for position, raw in enumerate(entries, 1)]


def merge_mak_requests(requests: Iterable[ActivationRequest]) -> list[ActivationRequest]:
    """Requests without duplicates: one per machine (CMID and fingerprint), the newest kept."""
    newest: dict[tuple[str, str], ActivationRequest] = {}
    for request in requests:
        machine = (request.cmid, request.fingerprint)
        kept = newest.get(machine)
        if kept is None or request.client_time >= kept.client_time:
            newest[machine] = request
    return list(newest.values())


@dataclass(frozen=True)
class MAKResponseEntry:
    """The vendor's answer for one machine: a ticket, or an error in the shape of SPEC §6."""

    cmid: str
    fingerprint: str
    ticket: str | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"cmid": self.cmid, "fingerprint": self.fingerprint}
        if self.ticket is not None:
            entry["ticket"] = self.ticket
        else:
            entry["error"] = self.error
        return entry


def mak_response_file(vendor_id: str, issued_at: int, entries: Iterable[MAKResponseEntry]) -> str:
    return (
        json.dumps(
            {
                "format": MAK_RESPONSE_FORMAT,
                "v": FILE_VERSION,
                "vendor_id": vendor_id,
                "issued_at": issued_at,
                "entries": [entry.to_json() for entry in entries],
            },
            indent=2,
        )
        + "\n"
    )


def _read_error(raw: Any) -> dict[str, Any]:
    error = validate.obj(raw, "error")
    code = validate.string(error, "code", max_len=64)
    message = validate.string(error, "message", max_len=2000)
    details = error.get("details", {})
    return {
        "code": code,
        "message": message,
        "details": details if isinstance(details, dict) else {},
    }


def read_mak_response(
    source: str | bytes | Mapping[str, Any],
) -> tuple[str, list[MAKResponseEntry]]:
    """(vendor id, entries) of a MAK response file. The tickets are NOT verified here: each
    machine verifies its own with ``tickets.verify_activation`` (``volact.client.mak`` does)."""
    data = parse_file(source, expected=[MAK_RESPONSE_FORMAT], limit=2 * MAX_MAK_FILE_BYTES)
    vendor_id = validate.identifier(data, "vendor_id")
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list) or len(raw_entries) > MAX_BATCH_ENTRIES:
        raise BadRequest(f"field 'entries' must be a list of at most {MAX_BATCH_ENTRIES} entries")
    entries = []
    for raw in raw_entries:
        item = validate.obj(raw, "entry")
        cmid = validate.uuid_text(item, "cmid")
        fingerprint = validate.hex_text(item, "fingerprint")
        if item.get("ticket") is not None:
            ticket = validate.string(item, "ticket", max_len=MAX_TOKEN_CHARS)
            entries.append(MAKResponseEntry(cmid, fingerprint, ticket=ticket))
        else:
            entries.append(
                MAKResponseEntry(cmid, fingerprint, error=_read_error(item.get("error")))
            )
    return vendor_id, entries


def read_request_file(source: str | bytes) -> dict[str, Any]:
    """A file given to ``volact vendor fulfil``: one of :data:`REQUEST_FORMATS`, decoded (its
    ``format`` says which; raises BadRequest otherwise)."""
    return parse_file(source, expected=REQUEST_FORMATS, limit=MAX_MAK_FILE_BYTES)
