"""A certified host directory and activation request bodies, for the host tests."""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volact import crypto
from volact.core import keys
from volact.core.descriptor import ProductDescriptor
from volact.core.policy import GroupPolicy
from volact.core.tickets import HostCertificate, issue_certificate
from volact.host.identity import HostFiles, HostSettings

VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"
DAY = 86400
GVLK = keys.make_gvlk(VENDOR, GROUP, PRODUCT).text


@dataclass
class CertifiedHost:
    """A host directory as `volact host init` + `volact host activate` leave it."""

    directory: Path
    files: HostFiles
    root: crypto.SigningKey
    signer: crypto.SigningKey
    settings: HostSettings
    descriptor: ProductDescriptor


def make_host(
    directory: Path,
    now: int,
    *,
    certified: bool = True,
    groups: dict[str, GroupPolicy] | None = None,
    host_key_of_certificate: crypto.VerifyKey | None = None,
) -> CertifiedHost:
    """Write a host directory; ``certified=False`` leaves out the certificate."""
    root = crypto.SigningKey.generate()
    signer = crypto.SigningKey.generate()
    settings = HostSettings(
        host_id="host-test-1",
        host_key=keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text,
        vendor_id=VENDOR,
        vendor_root_keys=[root.public_key.paserk],
    )
    files = HostFiles(directory)
    files.save_settings(settings)
    files.save_signing_key(signer)
    if certified:
        certificate = issue_certificate(
            root,
            HostCertificate(
                cert_id="cert-test-1",
                vendor_id=VENDOR,
                host_id=settings.host_id,
                host_key=(host_key_of_certificate or signer.public_key).paserk,
                customer="Example Corp",
                key_serial="host-0123456789abcdef01234567",
                groups=groups or {GROUP: GroupPolicy()},
                not_before=now - DAY,
                not_after=now + 730 * DAY,
                issued_at=now - DAY,
            ),
        )
        files.save_certificate_token(certificate.token)
    descriptor = ProductDescriptor(
        vendor_id=VENDOR,
        vendor_name="Acme",
        root_keys=(root.public_key.paserk,),
        product=PRODUCT,
        product_name="Writer 2026",
        group=GROUP,
        gvlk=GVLK,
    )
    return CertifiedHost(directory, files, root, signer, settings, descriptor)


def cmid(n: int) -> str:
    return str(uuid.UUID(int=0xC0FFEE << 64 | n))


def nonce(n: int = 0) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(4, "big") * 8).decode().rstrip("=")


def body(n: int, now: int, **changes: Any) -> dict[str, Any]:
    """A good activation request body for client number ``n``."""
    data: dict[str, Any] = {
        "v": 1,
        "product": PRODUCT,
        "key": GVLK,
        "cmid": cmid(n),
        "fingerprint": f"{n:032x}",
        "machine": f"pc-{n}.example.com",
        "client_time": now,
        "nonce": nonce(n),
        "state": "oob_grace",
    }
    data.update(changes)
    return data


def populated_host(directory: Path, now: int, **clone: Any) -> CertifiedHost:
    """A certified host whose SQLite store saw six clients (activated at the fifth) and then a
    clone of client 0 (another fingerprint; ``clone``: more changes to its request)."""
    import asyncio
    import contextlib

    from volact.core.errors import CountInsufficient
    from volact.host.service import HostService
    from volact.store import SQLiteStore

    host = make_host(directory, now)

    async def fill() -> None:
        store = SQLiteStore(host.directory / "host.db")
        async with HostService.from_files(host.files, store, lambda: now) as service:
            for n in range(6):
                with contextlib.suppress(CountInsufficient):
                    await service.activate(body(n, now), "192.0.2.7")
            await service.activate(body(0, now, fingerprint="c" * 32, **clone), "192.0.2.7")

    asyncio.run(fill())
    return host
