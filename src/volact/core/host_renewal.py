"""Renewing a host certificate before it ends (issue 20): the request and when it is due.

Rules (docs/vendor.md, "Short-lived certificates"):

1. **A renewal proves possession of the current host key.** The host signs a
   ``host_renewal_request`` token with the signing key its current certificate names; the
   request carries that certificate. The vendor verifies the certificate under its root keys,
   then the request under the certificate's host key: only the holder of the certified key can
   renew, and the renewed certificate certifies the same key for the same host id.
2. **Only a live certificate renews.** The vendor refuses a certificate that ended (superseded,
   revoked, already renewed: ``host_revoked``; but the certificate a renewal replaced is
   answered once more while the one it was renewed to is live, so that a host whose answer
   was lost can renew again), one of a revoked host key (``key_revoked``), and
   an expired one (``host_not_activated``: re-certify instead). A renewal uses no count and no
   re-certification.
3. **A renewal is due** once two thirds of the certificate's life have passed
   (:func:`renewal_due`); a running host with a vendor URL renews by itself then, and keeps
   serving with its current certificate until the new one is installed (an offline host's
   admin runs ``volact host renew --offline-request FILE``). The vendor renews early (before
   it is due) once: not while a certificate the host renewed is still valid.
4. The answer is an ordinary ``volact-host-activation-response`` (:mod:`volact.core.offline`),
   installed like one.

File: ``volact-host-renewal-request``, ``{"format", "v": 1, "token"}``; payload ``v``,
``request_id``, ``host_id``, ``certificate`` (the current certificate's token), ``created_at``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from volact import crypto
from volact.core import offline, validate
from volact.core.errors import BadRequest, UnsupportedVersion
from volact.core.tickets import HostCertificate, verify_certificate

RENEWAL_REQUEST_FORMAT = offline.HOST_RENEWAL_REQUEST_FORMAT
RENEWAL_REQUEST_KIND = "host_renewal_request"
FILE_VERSION = 1
MAX_FILE_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 32 * 1024
_FIELDS = frozenset({"v", "request_id", "host_id", "certificate", "created_at"})


@dataclass(frozen=True)
class HostRenewalRequest:
    request_id: str
    host_id: str
    certificate: str  # the current certificate's token
    created_at: int
    token: str = field(default="", compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "v": FILE_VERSION,
            "request_id": self.request_id,
            "host_id": self.host_id,
            "certificate": self.certificate,
            "created_at": self.created_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {"format": RENEWAL_REQUEST_FORMAT, "v": FILE_VERSION, "token": self.token}

    def to_file(self) -> str:
        if not self.token:
            raise ValueError("the renewal request is not signed")
        return json.dumps(self.to_json(), indent=2) + "\n"


def sign_renewal_request(
    host_key: crypto.SigningKey, request: HostRenewalRequest
) -> HostRenewalRequest:
    return replace(request, token=crypto.sign(host_key, RENEWAL_REQUEST_KIND, request.payload()))


def is_renewal_file(data: Mapping[str, Any]) -> bool:
    return data.get("format") == RENEWAL_REQUEST_FORMAT


def parse_renewal_file(source: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The decoded file (not yet verified), or BadRequest / UnsupportedVersion if it is not a
    renewal request of this version (the rule every volact file is read by)."""
    return offline.parse_file(source, expected=[RENEWAL_REQUEST_FORMAT], limit=MAX_FILE_BYTES)


def read_renewal_request(
    source: str | bytes | Mapping[str, Any],
    root_keys: list[crypto.VerifyKey],
    *,
    vendor_id: str,
) -> tuple[HostRenewalRequest, HostCertificate]:
    """Verify a renewal request (rule 1): its certificate under ``root_keys``, then the request
    under the certificate's host key. Raises BadRequest or ``invalid_host_certificate``."""
    data = parse_renewal_file(source)
    token = validate.string(data, "token", max_len=MAX_TOKEN_CHARS)
    try:
        unverified = json.loads(crypto.unverified_payload(token))
    except (crypto.SignatureError, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the host renewal request's token is damaged") from exc
    certificate = verify_certificate(
        validate.string(validate.obj(unverified, "payload"), "certificate", max_len=16384),
        root_keys,
        vendor_id=vendor_id,
    )
    try:
        verified = crypto.verify(
            token, RENEWAL_REQUEST_KIND, [crypto.VerifyKey.from_paserk(certificate.host_key)]
        )
    except (crypto.SignatureError, crypto.KeyFormatError) as exc:
        raise BadRequest(
            "the host renewal request is not signed by the key its certificate names (or was "
            "changed); make a new one on the host"
        ) from exc
    if set(verified) - _FIELDS:
        raise BadRequest("the host renewal request has unknown fields")
    if verified.get("v") != FILE_VERSION:
        raise UnsupportedVersion(f"host renewal request version {verified.get('v')!r}")
    request = HostRenewalRequest(
        request_id=validate.uuid_text(verified, "request_id"),
        host_id=validate.string(verified, "host_id", max_len=64),
        certificate=certificate.token,
        created_at=validate.integer(verified, "created_at", minimum=0),
        token=token,
    )
    if request.host_id != certificate.host_id:
        raise BadRequest("the renewal request names another host than its certificate")
    return request, certificate


def due_at(certificate: HostCertificate) -> int:
    """When a renewal of ``certificate`` is due (rule 3): two thirds into its life."""
    life = certificate.not_after - certificate.not_before
    return certificate.not_before + (2 * life) // 3


def renewal_due(certificate: HostCertificate, now: int) -> bool:
    """Whether a host should renew ``certificate`` at ``now`` (rule 3)."""
    return now >= due_at(certificate)
