"""Builders for signed test objects: a vendor, a product descriptor, a host certificate, tickets."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from volact import crypto
from volact.core import keys
from volact.core.descriptor import ProductDescriptor, sign_descriptor
from volact.core.durations import DAY
from volact.core.policy import GroupPolicy
from volact.core.protocol import ActivationRequest
from volact.core.states import State
from volact.core.tickets import HostCertificate, issue_certificate

T0 = 1_800_000_000  # a fixed "now" for pure tests (2027-01-15)


@dataclass
class Vendor:
    vendor_id: str = "acme"
    root: crypto.SigningKey = field(default_factory=crypto.SigningKey.generate)

    def descriptor(
        self, product: str = "writer-2026", group: str = "office-2026", **extra: object
    ) -> ProductDescriptor:
        unsigned = ProductDescriptor(
            vendor_id=self.vendor_id,
            vendor_name="Acme Corp",
            root_keys=(self.root.public_key.paserk,),
            product=product,
            product_name="Acme Writer 2026",
            group=group,
            gvlk=keys.make_gvlk(self.vendor_id, group, product).text,
            **extra,  # type: ignore[arg-type]
        )
        return sign_descriptor(self.root, unsigned)

    def certificate(
        self,
        host_key: crypto.SigningKey,
        groups: dict[str, GroupPolicy] | None = None,
        not_before: int = T0 - DAY,
        not_after: int = T0 + 730 * DAY,
        host_id: str = "host-1",
    ) -> HostCertificate:
        return issue_certificate(
            self.root,
            HostCertificate(
                cert_id="cert-1",
                vendor_id=self.vendor_id,
                host_id=host_id,
                host_key=host_key.public_key.paserk,
                customer="Contoso",
                key_serial="host-0123",
                groups=groups if groups is not None else {"office-2026": GroupPolicy()},
                not_before=not_before,
                not_after=not_after,
                issued_at=not_before,
            ),
        )


def nonce() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def request(
    vendor_id: str = "acme",
    product: str = "writer-2026",
    group: str = "office-2026",
    *,
    cmid: str | None = None,
    fingerprint: str = "ab" * 16,
    client_time: int = T0,
    key: str | None = None,
    state: State = State.OOB_GRACE,
) -> ActivationRequest:
    return ActivationRequest(
        product=product,
        key=key if key is not None else keys.make_gvlk(vendor_id, group, product).text,
        cmid=cmid or str(uuid.uuid4()),
        fingerprint=fingerprint,
        machine="pc-1",
        client_time=client_time,
        nonce=nonce(),
        state=state,
    )
