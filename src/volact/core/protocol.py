"""Protocol version 1 (SPEC §6): the activation request and response bodies.

Parsing is strict: every field is type-, size- and format-checked, unknown fields are refused,
and the first problem raises :class:`~volact.core.errors.BadRequest` (or
:class:`~volact.core.errors.UnsupportedVersion`) naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volact.core import validate
from volact.core.errors import BadRequest, UnsupportedVersion
from volact.core.states import State

PROTOCOL_VERSION = 1

# Every URL path of the host and the vendor service (both sides import these).
ACTIVATE_PATH = "/v1/activate"
HEALTH_PATH = "/v1/health"
HOST_ACTIVATIONS_PATH = "/v1/host-activations"
MAK_ACTIVATIONS_PATH = "/v1/mak-activations"
REVOCATIONS_PATH = "/v1/revocations"
HOST_RENEWALS_PATH = "/v1/host-renewals"
DEFAULT_PORT = 7688
MAX_BODY_BYTES = 16 * 1024
NONCE_BYTES = (16, 64)
MAX_MACHINE_NAME = 255

REQUEST_FIELDS = frozenset(
    {"v", "product", "key", "cmid", "fingerprint", "machine", "client_time", "nonce", "state"}
)


@dataclass(frozen=True)
class ActivationRequest:
    product: str
    key: str
    cmid: str
    fingerprint: str
    machine: str
    client_time: int
    nonce: str
    state: State
    v: int = PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "product": self.product,
            "key": self.key,
            "cmid": self.cmid,
            "fingerprint": self.fingerprint,
            "machine": self.machine,
            "client_time": self.client_time,
            "nonce": self.nonce,
            "state": str(self.state),
        }


def parse_activation_request(body: Any) -> ActivationRequest:
    """Validate a decoded JSON body of ``POST /v1/activate``."""
    data = validate.obj(body, "the request body")
    version = data.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        if isinstance(version, int) and not isinstance(version, bool):
            raise UnsupportedVersion(
                f"protocol version {version} is not supported; this host speaks version "
                f"{PROTOCOL_VERSION}",
                {"supported": [PROTOCOL_VERSION]},
            )
        raise BadRequest("field 'v' must be the protocol version (1)", {"field": "v"})
    if not REQUEST_FIELDS.issuperset(data):
        unknown = sorted(set(data) - REQUEST_FIELDS)
        raise BadRequest(f"unknown field(s): {', '.join(unknown[:5])}", {"fields": unknown[:5]})
    state_text = validate.string(data, "state", max_len=32)
    try:
        state = State(state_text)
    except ValueError as exc:
        raise BadRequest(
            f"field 'state' must be one of {', '.join(s.value for s in State)}",
            {"field": "state"},
        ) from exc
    return ActivationRequest(
        product=validate.identifier(data, "product"),
        key=validate.string(data, "key", max_len=64),
        cmid=validate.uuid_text(data, "cmid"),
        fingerprint=validate.hex_text(data, "fingerprint"),
        machine=validate.string(data, "machine", max_len=MAX_MACHINE_NAME),
        client_time=validate.integer(data, "client_time", minimum=0),
        nonce=validate.base64url(data, "nonce", min_bytes=NONCE_BYTES[0], max_bytes=NONCE_BYTES[1]),
        state=state,
    )
