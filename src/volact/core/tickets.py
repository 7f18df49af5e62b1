"""Host certificates and activation tickets: issue and verify (SPEC §2).

The chain is: vendor root key → host certificate → ticket. A MAK ticket is signed by the vendor's
root key directly and has no certificate.

Verification raises, it never returns a bool: every failure of a certificate raises
:class:`InvalidHostCertificate`, every failure of a ticket raises :class:`InvalidTicket`. The
message says what failed in words fit for a log; callers facing a stranger send only the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from volact import crypto
from volact.core import validate
from volact.core.descriptor import ProductDescriptor
from volact.core.errors import BadRequest, InvalidHostCertificate, InvalidTicket, VolactError
from volact.core.policy import CLOCK_SKEW_TOLERANCE, GroupPolicy

CERTIFICATE_KIND = "host_certificate"
TICKET_KIND = "ticket"
VERSION = 1
ISSUER_HOST = "host"
ISSUER_VENDOR = "vendor"


@dataclass(frozen=True)
class HostCertificate:
    """What the vendor certifies about one host (times in Unix seconds)."""

    cert_id: str
    vendor_id: str
    host_id: str
    host_key: str  # PASERK k4.public of the host's signing key
    customer: str
    key_serial: str
    groups: dict[str, GroupPolicy]
    not_before: int
    not_after: int
    issued_at: int
    token: str = field(default="", compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "cert_id": self.cert_id,
            "vendor_id": self.vendor_id,
            "host_id": self.host_id,
            "host_key": self.host_key,
            "customer": self.customer,
            "key_serial": self.key_serial,
            "groups": {name: policy.to_dict() for name, policy in sorted(self.groups.items())},
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issued_at": self.issued_at,
        }

    def covers(self, group: str) -> bool:
        return group in self.groups

    def valid_at(self, now: int) -> bool:
        return self.not_before <= now <= self.not_after


@dataclass(frozen=True)
class Ticket:
    """One activation of one client (times in Unix seconds; ``valid_until`` None = permanent)."""

    issuer: str  # "host" or "vendor" (MAK)
    issuer_id: str  # the host id, or the vendor id for MAK tickets
    product: str
    group: str
    cmid: str
    fingerprint: str
    issued_at: int
    valid_until: int | None
    renewal_interval: int
    retry_interval: int
    oot_grace: int
    count: int
    threshold: int
    nonce: str
    cert_id: str | None = None
    token: str = field(default="", compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "issuer": self.issuer,
            "issuer_id": self.issuer_id,
            "cert_id": self.cert_id,
            "product": self.product,
            "group": self.group,
            "cmid": self.cmid,
            "fingerprint": self.fingerprint,
            "issued_at": self.issued_at,
            "valid_until": self.valid_until,
            "renewal_interval": self.renewal_interval,
            "retry_interval": self.retry_interval,
            "oot_grace": self.oot_grace,
            "count": self.count,
            "threshold": self.threshold,
            "nonce": self.nonce,
        }


# --- issuing --------------------------------------------------------------------------------


def issue_certificate(root: crypto.SigningKey, certificate: HostCertificate) -> HostCertificate:
    """Sign ``certificate`` with the vendor's root key; returns it with its token set."""
    if not certificate.groups:
        raise ValueError("a host certificate must cover at least one group")
    if certificate.not_after <= certificate.not_before:
        raise ValueError("not_after must be later than not_before")
    token = crypto.sign(root, CERTIFICATE_KIND, certificate.payload())
    return replace(certificate, token=token)


def issue_ticket(key: crypto.SigningKey, ticket: Ticket) -> Ticket:
    """Sign ``ticket`` with a host key (or, for MAK tickets, the vendor's root key)."""
    token = crypto.sign(key, TICKET_KIND, ticket.payload())
    return replace(ticket, token=token)


# --- parsing (of verified payloads) ---------------------------------------------------------


def _certificate_from_payload(data: dict[str, Any], token: str) -> HostCertificate:
    if data.get("v") != VERSION:
        raise InvalidHostCertificate(f"host certificate version {data.get('v')!r} not supported")
    groups_raw = validate.obj(data.get("groups"), "groups")
    groups = {
        validate.check_identifier(name, "group"): GroupPolicy.from_dict(policy)
        for name, policy in groups_raw.items()
    }
    return HostCertificate(
        cert_id=validate.string(data, "cert_id", max_len=64),
        vendor_id=validate.identifier(data, "vendor_id"),
        host_id=validate.string(data, "host_id", max_len=64),
        host_key=validate.string(data, "host_key", max_len=128),
        customer=validate.string(data, "customer", max_len=200),
        key_serial=validate.string(data, "key_serial", max_len=64),
        groups=groups,
        not_before=validate.integer(data, "not_before"),
        not_after=validate.integer(data, "not_after"),
        issued_at=validate.integer(data, "issued_at"),
        token=token,
    )


def _ticket_from_payload(data: dict[str, Any], token: str) -> Ticket:
    if data.get("v") != VERSION:
        raise InvalidTicket(f"ticket version {data.get('v')!r} not supported")
    issuer = validate.string(data, "issuer", max_len=16)
    if issuer not in (ISSUER_HOST, ISSUER_VENDOR):
        raise InvalidTicket(f"unknown ticket issuer {issuer!r}")
    return Ticket(
        issuer=issuer,
        issuer_id=validate.string(data, "issuer_id", max_len=64),
        cert_id=validate.optional_string(data, "cert_id", max_len=64),
        product=validate.identifier(data, "product"),
        group=validate.identifier(data, "group"),
        cmid=validate.uuid_text(data, "cmid"),
        fingerprint=validate.hex_text(data, "fingerprint"),
        issued_at=validate.integer(data, "issued_at"),
        valid_until=validate.optional_integer(data, "valid_until"),
        renewal_interval=validate.integer(data, "renewal_interval", minimum=1),
        retry_interval=validate.integer(data, "retry_interval", minimum=1),
        oot_grace=validate.integer(data, "oot_grace", minimum=0),
        count=validate.integer(data, "count", minimum=0),
        threshold=validate.integer(data, "threshold", minimum=1),
        nonce=validate.string(data, "nonce", max_len=128),
        token=token,
    )


# --- verifying ------------------------------------------------------------------------------


def verify_certificate(
    token: str, root_keys: list[crypto.VerifyKey], *, vendor_id: str | None = None
) -> HostCertificate:
    """Check the root signature and the shape of a host certificate.

    Raises :class:`InvalidHostCertificate` for any failure.
    """
    try:
        payload = crypto.verify(token, CERTIFICATE_KIND, root_keys)
        certificate = _certificate_from_payload(payload, token)
    except crypto.SignatureError as exc:
        raise InvalidHostCertificate(f"host certificate rejected: {exc}") from exc
    except InvalidHostCertificate:
        raise
    except VolactError as exc:
        raise InvalidHostCertificate(f"host certificate malformed: {exc}") from exc
    if vendor_id is not None and certificate.vendor_id != vendor_id:
        raise InvalidHostCertificate("host certificate is from another vendor")
    if certificate.not_after <= certificate.not_before:
        raise InvalidHostCertificate("host certificate has an empty validity")
    return certificate


@dataclass(frozen=True)
class Activation:
    """A ticket whose whole chain verified for one client."""

    ticket: Ticket
    certificate: HostCertificate | None


def verify_activation(
    descriptor: ProductDescriptor,
    ticket_token: str,
    certificate_token: str | None,
    *,
    cmid: str,
    fingerprint: str,
    nonce: str | None = None,
    now: int | None = None,
) -> Activation:
    """Verify the whole chain offline, as the client does every time it reports its status.

    Checks (SPEC §2): the root signature on the certificate; the certificate is from the
    descriptor's vendor and covers the product's group; the ticket is signed by the certified
    host key (or, for a MAK ticket, by a root key); product, group, CMID and fingerprint are this
    client's; the nonce is the one sent (when ``nonce`` is given, i.e. on activation); the ticket
    was issued inside the certificate's validity and keeps to the vendor's policy in every
    field: validity, grace, renewal and retry intervals inside the certificate's bounds, the
    certificate's threshold, and a count that reached it (a host key in the customer's hands
    signs whatever it is given, so a ticket is only as good as these checks). With ``now`` (the
    client's clock, on activation) a ticket issued more than the accepted skew (4 hours) in
    the client's future is refused too.

    Raises :class:`InvalidHostCertificate` or :class:`InvalidTicket`.
    """
    root_keys = descriptor.verify_keys()
    try:
        footer = crypto.read_footer(ticket_token)
    except crypto.SignatureError as exc:
        raise InvalidTicket(f"ticket rejected: {exc}") from exc
    certificate: HostCertificate | None = None
    if any(key.key_id == footer.get("kid") for key in root_keys):
        signer_keys = root_keys  # A MAK ticket, signed by the vendor itself.
    else:
        if certificate_token is None:
            raise InvalidTicket(
                "the ticket is not signed by this product's vendor and came without a host "
                "certificate"
            )
        certificate = verify_certificate(
            certificate_token, root_keys, vendor_id=descriptor.vendor_id
        )
        if not certificate.covers(descriptor.group):
            raise InvalidHostCertificate(
                f"host certificate does not cover product group {descriptor.group!r}"
            )
        try:
            signer_keys = [crypto.VerifyKey.from_paserk(certificate.host_key)]
        except crypto.KeyFormatError as exc:
            raise InvalidHostCertificate("host certificate carries an unreadable key") from exc
    try:
        payload = crypto.verify(ticket_token, TICKET_KIND, signer_keys)
        ticket = _ticket_from_payload(payload, ticket_token)
    except crypto.SignatureError as exc:
        raise InvalidTicket(f"ticket rejected: {exc}") from exc
    except InvalidTicket:
        raise
    except (VolactError, BadRequest) as exc:
        raise InvalidTicket(f"ticket malformed: {exc}") from exc

    if ticket.product != descriptor.product or ticket.group != descriptor.group:
        raise InvalidTicket("ticket is for another product")
    if ticket.cmid != cmid or ticket.fingerprint != fingerprint:
        raise InvalidTicket("ticket is for another machine")
    if nonce is not None and ticket.nonce != nonce:
        raise InvalidTicket("ticket does not answer this request (nonce mismatch)")
    if ticket.valid_until is not None and ticket.valid_until <= ticket.issued_at:
        raise InvalidTicket("ticket has an empty validity")
    if now is not None and ticket.issued_at > now + CLOCK_SKEW_TOLERANCE:
        raise InvalidTicket(
            "ticket was issued more than 4 hours in this machine's future: this machine's "
            "clock is behind (fix it, with NTP) or the issuer's is wrong",
            {"issued_at": ticket.issued_at, "client_time": now},
        )

    if certificate is None:
        if ticket.issuer != ISSUER_VENDOR or ticket.issuer_id != descriptor.vendor_id:
            raise InvalidTicket("a ticket signed by a root key must be a vendor (MAK) ticket")
        return Activation(ticket, None)

    if ticket.issuer != ISSUER_HOST or ticket.issuer_id != certificate.host_id:
        raise InvalidTicket("ticket issuer does not match the host certificate")
    if ticket.cert_id != certificate.cert_id:
        raise InvalidTicket("ticket names another host certificate")
    if not certificate.valid_at(ticket.issued_at):
        raise InvalidTicket("ticket was issued outside the host certificate's validity")
    policy = certificate.groups[descriptor.group]
    if ticket.valid_until is None or ticket.valid_until - ticket.issued_at > policy.validity:
        raise InvalidTicket("ticket validity exceeds the vendor's policy")
    if ticket.oot_grace != policy.oot_grace:
        raise InvalidTicket("ticket grace differs from the vendor's policy")
    if not policy.renewal_min <= ticket.renewal_interval <= policy.renewal_max:
        raise InvalidTicket("ticket renewal interval is outside the vendor's bounds")
    if not policy.retry_min <= ticket.retry_interval <= policy.retry_max:
        raise InvalidTicket("ticket retry interval is outside the vendor's bounds")
    if ticket.threshold != policy.threshold:
        raise InvalidTicket("ticket threshold differs from the vendor's policy")
    if ticket.count < ticket.threshold:
        raise InvalidTicket("ticket count is below the activation threshold")
    return Activation(ticket, certificate)
