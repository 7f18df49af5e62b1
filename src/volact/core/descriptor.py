"""The product descriptor: what a vendor bakes into its app.

It lists the vendor's root public keys (all of them, so a root key can be rotated: a client
accepts any root key its descriptor lists), the product id, name and group, the product's GVLK,
the DNS SRV service name and the out-of-box grace. It is signed by one of the listed root keys;
the signature protects the file against corruption and casual edits (an attacker who can rewrite
the app's files can rewrite the app, so the descriptor is the root of trust, like a CA bundle).

File format (JSON)::

    {"format": "volact-product-descriptor", "v": 1, "token": "v4.public.…"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from volact import crypto
from volact.core import validate
from volact.core.errors import BadRequest, UnsupportedVersion
from volact.core.policy import (
    DEFAULT_OOB_GRACE,
    DEFAULT_REARM_LIMIT,
    OOB_GRACE_BOUNDS,
    REARM_LIMIT_BOUNDS,
)

DESCRIPTOR_KIND = "product_descriptor"
DESCRIPTOR_FORMAT = "volact-product-descriptor"
FORMAT_VERSION = 1
DEFAULT_SRV_SERVICE = "_volact._tcp"
MAX_DESCRIPTOR_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProductDescriptor:
    """A product as its vendor signed it: the vendor, its root keys, the product, its group,
    the GVLK and the client's grace and rearm rules (``token``: the signed form)."""

    vendor_id: str
    vendor_name: str
    root_keys: tuple[str, ...]  # PASERK k4.public texts
    product: str
    product_name: str
    group: str
    gvlk: str
    srv_service: str = DEFAULT_SRV_SERVICE
    oob_grace: int = DEFAULT_OOB_GRACE
    rearm_limit: int = DEFAULT_REARM_LIMIT
    # Where MAK activations go online (the vendor service), if the vendor offers it.
    activation_url: str | None = None
    token: str = field(default="", compare=False)

    def verify_keys(self) -> list[crypto.VerifyKey]:
        return [crypto.VerifyKey.from_paserk(text) for text in self.root_keys]

    def payload(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "vendor_id": self.vendor_id,
            "vendor_name": self.vendor_name,
            "root_keys": list(self.root_keys),
            "product": self.product,
            "product_name": self.product_name,
            "group": self.group,
            "gvlk": self.gvlk,
            "srv_service": self.srv_service,
            "oob_grace": self.oob_grace,
            "rearm_limit": self.rearm_limit,
            "activation_url": self.activation_url,
        }

    def to_file(self) -> str:
        """The descriptor file's text (requires a signed descriptor)."""
        if not self.token:
            raise ValueError("descriptor is not signed")
        return json.dumps(
            {"format": DESCRIPTOR_FORMAT, "v": FORMAT_VERSION, "token": self.token}, indent=2
        )


def sign_descriptor(root: crypto.SigningKey, descriptor: ProductDescriptor) -> ProductDescriptor:
    if root.public_key.paserk not in descriptor.root_keys:
        raise ValueError("the signing root key must be listed in the descriptor")
    token = crypto.sign(root, DESCRIPTOR_KIND, descriptor.payload())
    return replace(descriptor, token=token)


def _from_payload(data: dict[str, Any], token: str) -> ProductDescriptor:
    if data.get("v") != FORMAT_VERSION:
        raise UnsupportedVersion(f"product descriptor version {data.get('v')!r} is not supported")
    root_keys = validate.string_list(data, "root_keys", max_items=16)
    service = validate.string(data, "srv_service", max_len=63)
    if not service.startswith("_") or "._" not in service:
        raise BadRequest("srv_service must look like '_volact._tcp'", {"field": "srv_service"})
    return ProductDescriptor(
        vendor_id=validate.identifier(data, "vendor_id"),
        vendor_name=validate.string(data, "vendor_name", max_len=200),
        root_keys=tuple(root_keys),
        product=validate.identifier(data, "product"),
        product_name=validate.string(data, "product_name", max_len=200),
        group=validate.identifier(data, "group"),
        gvlk=validate.string(data, "gvlk", max_len=29),
        srv_service=service,
        oob_grace=validate.integer(
            data, "oob_grace", minimum=OOB_GRACE_BOUNDS[0], maximum=OOB_GRACE_BOUNDS[1]
        ),
        rearm_limit=validate.integer(
            data, "rearm_limit", minimum=REARM_LIMIT_BOUNDS[0], maximum=REARM_LIMIT_BOUNDS[1]
        ),
        activation_url=validate.optional_string(data, "activation_url", max_len=2000),
        token=token,
    )


def load_descriptor(source: str | bytes | dict[str, Any]) -> ProductDescriptor:
    """Parse and verify a descriptor file (text, bytes or the parsed JSON object).

    Raises ``BadRequest`` (malformed, tampered, or not signed by a listed root key) or
    ``UnsupportedVersion``.
    """
    if isinstance(source, (str, bytes)):
        if len(source) > MAX_DESCRIPTOR_BYTES:
            raise BadRequest("the product descriptor file is too large")
        try:
            source = json.loads(source)
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise BadRequest("the product descriptor is not valid JSON") from exc
    data = validate.obj(source, "product descriptor")
    if data.get("format") != DESCRIPTOR_FORMAT:
        raise BadRequest("this file is not a volact product descriptor")
    if data.get("v") != FORMAT_VERSION:
        raise UnsupportedVersion(f"product descriptor version {data.get('v')!r} is not supported")
    token = validate.string(data, "token", max_len=MAX_DESCRIPTOR_BYTES)
    try:
        unverified = json.loads(crypto.unverified_payload(token))
    except (crypto.SignatureError, ValueError) as exc:
        raise BadRequest("the product descriptor's token is malformed") from exc
    payload = validate.obj(unverified, "product descriptor payload")
    keys_text = validate.string_list(payload, "root_keys", max_items=16)
    try:
        keys = [crypto.VerifyKey.from_paserk(text) for text in keys_text]
        verified = crypto.verify(token, DESCRIPTOR_KIND, keys)
    except (crypto.SignatureError, crypto.KeyFormatError) as exc:
        raise BadRequest(
            "the product descriptor's signature does not verify (the file was changed)"
        ) from exc
    return _from_payload(verified, token)
