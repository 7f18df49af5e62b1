"""What the vendor store returns: the records of root keys, groups, products and issued keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volact.core.policy import GroupPolicy


@dataclass(frozen=True)
class RootKeyRecord:
    seq: int
    key_id: str
    public_key: str
    state: str  # "active" (signs), "valid" (listed, verifies), "retired" (neither)
    created_at: int
    retired_at: int | None
    # Where the private key is: None = the file root-keys/<seq>.pem; else the JSON of a PKCS#11
    # location (volact.authority.hsm.TokenKey: module, token, label, id; never the PIN).
    storage: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key,
            "state": self.state,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
            "storage": "pkcs11" if self.storage else "file",
        }


@dataclass(frozen=True)
class GroupRecord:
    group_id: str
    policy: GroupPolicy
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class ProductRecord:
    product_id: str
    name: str
    group_id: str
    oob_grace: int
    rearm_limit: int
    srv_service: str
    activation_url: str | None
    created_at: int


@dataclass(frozen=True)
class KeyRecord:
    serial: str
    channel: str
    key_text: str
    product_id: str | None
    groups: tuple[str, ...]
    customer: str | None
    activation_limit: int | None  # hosts (host key) or machines (MAK); None for a GVLK
    validity: int | None  # MAK ticket validity in seconds; None = permanent
    used: int  # distinct hosts (host key) or machines (MAK) so far
    created_at: int

    def to_json(self, *, reveal: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "serial": self.serial,
            "channel": self.channel,
            "product": self.product_id,
            "groups": list(self.groups),
            "customer": self.customer,
            "limit": self.activation_limit,
            "used": self.used,
            "validity": self.validity,
            "created_at": self.created_at,
        }
        if reveal:
            data["key"] = self.key_text
        return data
