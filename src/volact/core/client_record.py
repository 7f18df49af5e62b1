"""What a client keeps about one installed product, and its JSON codec (the state file's record).

:class:`ClientRecord` (with the :class:`StoredActivation` it holds) is the data the client machine
(:mod:`volact.core.client_machine`) changes; its rules live there. :meth:`ClientRecord.to_dict`
and :meth:`ClientRecord.from_dict` are the one JSON form of a record, written and read by the
SDK's state file (:mod:`volact.client.state`). Reading treats the JSON as untrusted: every field
is checked, and so are the invariants the machine keeps (:func:`check_consistency`); an
``installed_at`` later than the record's trusted time is read as the trusted time.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from volact.core import keys, validate
from volact.core.errors import BadRequest, InvalidKey, UnsupportedVersion
from volact.core.policy import (
    INTERVAL_BOUNDS,
    OOB_GRACE_BOUNDS,
    REARM_LIMIT_BOUNDS,
    GroupPolicy,
)
from volact.core.states import State

__all__ = [
    "CLOCK_TAMPERED",
    "CLONED_FROM_LIMIT",
    "DEFAULT_RENEWAL_INTERVAL",
    "DEFAULT_RETRY_INTERVAL",
    "INSTALLABLE_CHANNELS",
    "NOTIFICATION_REASONS",
    "OOB_GRACE_EXPIRED",
    "OOT_GRACE_EXPIRED",
    "RECORD_VERSION",
    "ClientRecord",
    "StoredActivation",
]

RECORD_VERSION = 1
_POLICY_DEFAULTS = GroupPolicy()
DEFAULT_RENEWAL_INTERVAL = _POLICY_DEFAULTS.renewal_interval
DEFAULT_RETRY_INTERVAL = _POLICY_DEFAULTS.retry_interval
# How many previous CMIDs a record remembers (the most recent ones), so the file stays small.
CLONED_FROM_LIMIT = 32

OOB_GRACE_EXPIRED = "oob_grace_expired"
OOT_GRACE_EXPIRED = "oot_grace_expired"
CLOCK_TAMPERED = "clock_tampered"
NOTIFICATION_REASONS = frozenset({OOB_GRACE_EXPIRED, OOT_GRACE_EXPIRED, CLOCK_TAMPERED})
# The channels a client can install (a host key is for hosts).
INSTALLABLE_CHANNELS = frozenset({keys.Channel.GVLK, keys.Channel.MAK})


# --- the record -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredActivation:
    """The activation a client holds: the verified ticket and what the machine needs of it."""

    ticket: str  # the ticket token, re-verified by the SDK whenever it reports status
    certificate: str | None  # the host certificate token; None for a MAK (vendor) ticket
    issuer_id: str  # the host id, or the vendor id for a MAK ticket
    issued_at: int  # the host's (or vendor's) clock
    valid_until: int | None  # None = permanent (MAK)
    oot_grace: int
    renewed_at: int  # the client's clock at the last success that confirmed this activation

    def to_dict(self) -> dict[str, Any]:
        """Every field, under its own name (the record's ``activation`` object)."""
        return asdict(self)


@dataclass(frozen=True)
class ClientRecord:
    """Everything the SDK persists about one installed product (times in Unix seconds)."""

    product: str
    key: str  # canonical key text (a MAK is a secret: the state file is private)
    channel: keys.Channel  # GVLK or MAK
    cmid: str
    fingerprint: str
    installed_at: int  # start of the OOB grace; a rearm moves it to the rearm's time
    oob_grace: int  # the descriptor's (the SDK ignores an edited copy)
    rearm_limit: int  # the descriptor's, as oob_grace
    rearm_count: int
    phase: State
    reason: str | None
    activation: StoredActivation | None
    trusted_time: int
    renewal_interval: int = DEFAULT_RENEWAL_INTERVAL
    retry_interval: int = DEFAULT_RETRY_INTERVAL
    last_attempt_at: int | None = None
    last_error: str | None = None  # the error code of the last attempt, None if it succeeded
    cloned_from: tuple[str, ...] = ()  # earlier CMIDs of this install, oldest first

    def __post_init__(self) -> None:
        # Rule 2, which keeps advance() from looping on a hand-made record.
        if (self.phase is State.NOTIFICATION) != (self.reason in NOTIFICATION_REASONS):
            raise ValueError(f"reason {self.reason!r} does not fit state {self.phase.value!r}")

    @property
    def tampered(self) -> bool:
        return self.reason == CLOCK_TAMPERED

    @property
    def valid_until(self) -> int | None:
        return None if self.activation is None else self.activation.valid_until

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the SDK writes to the state file."""
        return {
            "v": RECORD_VERSION,
            "product": self.product,
            "key": self.key,
            "channel": self.channel.value,
            "cmid": self.cmid,
            "fingerprint": self.fingerprint,
            "installed_at": self.installed_at,
            "oob_grace": self.oob_grace,
            "rearm_limit": self.rearm_limit,
            "rearm_count": self.rearm_count,
            "phase": self.phase.value,
            "reason": self.reason,
            "activation": None if self.activation is None else self.activation.to_dict(),
            "trusted_time": self.trusted_time,
            "renewal_interval": self.renewal_interval,
            "retry_interval": self.retry_interval,
            "last_attempt_at": self.last_attempt_at,
            "last_error": self.last_error,
            "cloned_from": list(self.cloned_from),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ClientRecord:
        """Rebuild a record from untrusted JSON (a state file).

        Raises :class:`BadRequest` naming the first problem (or :class:`UnsupportedVersion` for
        a record written by a newer volact).
        """
        return _record_from_dict(data)


# --- reading a record from untrusted JSON ---------------------------------------------------

_RECORD_FIELDS = frozenset(
    {
        "v",
        "product",
        "key",
        "channel",
        "cmid",
        "fingerprint",
        "installed_at",
        "oob_grace",
        "rearm_limit",
        "rearm_count",
        "phase",
        "reason",
        "activation",
        "trusted_time",
        "renewal_interval",
        "retry_interval",
        "last_attempt_at",
        "last_error",
        "cloned_from",
    }
)
_ACTIVATION_FIELDS = frozenset(
    {"ticket", "certificate", "issuer_id", "issued_at", "valid_until", "oot_grace", "renewed_at"}
)
_TOKEN_LIMIT = 16384
# A PASETO v4.public token with its footer. A regex, not validate.string: tokens are kilobytes
# long, and a state file is read every time the SDK reports status.
_TOKEN = re.compile(r"v4\.public\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _token(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or len(value) > _TOKEN_LIMIT or not _TOKEN.fullmatch(value):
        raise BadRequest(f"field {name!r} must be a signed token", {"field": name})
    return value


def _optional_token(data: dict[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else _token(data, name)


def _refuse_unknown(data: dict[str, Any], known: frozenset[str], what: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadRequest(f"unknown {what} field(s): {', '.join(unknown[:5])}", {"fields": unknown})


def _activation_from_dict(value: Any) -> StoredActivation | None:
    if value is None:
        return None
    data = validate.obj(value, "activation")
    _refuse_unknown(data, _ACTIVATION_FIELDS, "activation")
    activation = StoredActivation(
        ticket=_token(data, "ticket"),
        certificate=_optional_token(data, "certificate"),
        issuer_id=validate.string(data, "issuer_id", max_len=64),
        issued_at=validate.integer(data, "issued_at", minimum=0),
        valid_until=validate.optional_integer(data, "valid_until", minimum=0),
        # Any grace a signed ticket may carry; rule 13 ties it to the ticket.
        oot_grace=validate.integer(data, "oot_grace", minimum=0),
        renewed_at=validate.integer(data, "renewed_at", minimum=0),
    )
    if activation.valid_until is not None and activation.valid_until <= activation.issued_at:
        raise BadRequest("the activation ends before it starts", {"field": "valid_until"})
    return activation


def _record_from_dict(value: Any) -> ClientRecord:
    data = validate.obj(value, "client record")
    version = data.get("v")
    if version != RECORD_VERSION:
        if isinstance(version, int) and not isinstance(version, bool):
            raise UnsupportedVersion(
                f"client state version {version} is not supported (this volact writes "
                f"version {RECORD_VERSION})",
                {"supported": [RECORD_VERSION]},
            )
        raise BadRequest("field 'v' must be the client state version (1)", {"field": "v"})
    _refuse_unknown(data, _RECORD_FIELDS, "client record")
    key_text = validate.string(data, "key", max_len=keys.MAX_INPUT_LENGTH)
    try:
        key = keys.parse_key(key_text)
    except InvalidKey as exc:
        raise BadRequest(f"field 'key' is not a product key: {exc}", {"field": "key"}) from exc
    channel = validate.string(data, "channel", max_len=8)
    if key.channel not in INSTALLABLE_CHANNELS or channel != key.channel.value:
        raise BadRequest(
            "field 'channel' must match the key ('gvlk' or 'mak')", {"field": "channel"}
        )
    try:
        phase = State(validate.string(data, "phase", max_len=32))
    except ValueError:
        phase = State.UNLICENSED
    if phase is State.UNLICENSED:
        raise BadRequest(
            "field 'phase' must be the state of an installed product", {"field": "phase"}
        )
    reason = validate.optional_string(data, "reason", max_len=32)
    if (phase is State.NOTIFICATION) != (reason is not None) or reason not in {
        None,
        *NOTIFICATION_REASONS,
    }:
        raise BadRequest(
            "field 'reason' must name why the product is in notification, and only then",
            {"field": "reason"},
        )
    cloned_from = data.get("cloned_from")
    if not isinstance(cloned_from, list) or len(cloned_from) > CLONED_FROM_LIMIT:
        raise BadRequest(
            f"field 'cloned_from' must be a list of at most {CLONED_FROM_LIMIT} CMIDs",
            {"field": "cloned_from"},
        )
    rearm_limit = validate.integer(
        data, "rearm_limit", minimum=REARM_LIMIT_BOUNDS[0], maximum=REARM_LIMIT_BOUNDS[1]
    )
    trusted_time = validate.integer(data, "trusted_time", minimum=0)
    record = ClientRecord(
        product=validate.identifier(data, "product"),
        key=key.text,
        channel=key.channel,
        cmid=validate.uuid_text(data, "cmid"),
        fingerprint=validate.hex_text(data, "fingerprint"),
        # Never after the trusted time: an install time in the future would stretch the grace.
        installed_at=min(validate.integer(data, "installed_at", minimum=0), trusted_time),
        oob_grace=validate.integer(
            data, "oob_grace", minimum=OOB_GRACE_BOUNDS[0], maximum=OOB_GRACE_BOUNDS[1]
        ),
        rearm_limit=rearm_limit,
        rearm_count=validate.integer(data, "rearm_count", minimum=0, maximum=rearm_limit),
        phase=phase,
        reason=reason,
        activation=_activation_from_dict(data.get("activation")),
        trusted_time=trusted_time,
        renewal_interval=validate.integer(
            data, "renewal_interval", minimum=INTERVAL_BOUNDS[0], maximum=INTERVAL_BOUNDS[1]
        ),
        retry_interval=validate.integer(
            data, "retry_interval", minimum=INTERVAL_BOUNDS[0], maximum=INTERVAL_BOUNDS[1]
        ),
        last_attempt_at=validate.optional_integer(data, "last_attempt_at", minimum=0),
        last_error=validate.optional_string(data, "last_error", max_len=64),
        cloned_from=tuple(validate.uuid_text({"cmid": item}, "cmid") for item in cloned_from),
    )
    check_consistency(record)
    return record


def check_consistency(record: ClientRecord) -> None:
    """The invariants the machine keeps, checked on a record read from a file."""
    activation = record.activation
    if record.phase in (State.LICENSED, State.OOT_GRACE) and activation is None:
        raise BadRequest(f"a {record.phase.value} record must hold an activation")
    if record.phase is State.OOB_GRACE and activation is not None:
        raise BadRequest("an oob_grace record cannot hold an activation")
    if (
        record.phase is State.OOT_GRACE
        and activation is not None
        and activation.valid_until is None
    ):
        raise BadRequest("a permanent activation has no out-of-tolerance grace")
    if record.last_error is not None and record.last_attempt_at is None:
        raise BadRequest("a failed attempt needs its time", {"field": "last_attempt_at"})
