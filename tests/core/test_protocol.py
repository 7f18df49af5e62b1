from __future__ import annotations

from typing import Any

import pytest

from tests.factories import request
from volact.core.errors import BadRequest, UnsupportedVersion
from volact.core.protocol import parse_activation_request
from volact.core.states import State


def body(**changes: Any) -> dict[str, Any]:
    data = request().to_json()
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_a_good_request_round_trips() -> None:
    req = request()
    parsed = parse_activation_request(req.to_json())
    assert parsed == req
    assert parsed.state is State.OOB_GRACE


def test_uuid_is_normalised() -> None:
    cmid = "6F1C2A0E8D4B4C559A432D1F0B7E9C11"
    assert parse_activation_request(body(cmid=cmid)).cmid == "6f1c2a0e-8d4b-4c55-9a43-2d1f0b7e9c11"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"v": "1"}, "protocol version"),
        ({"v": True}, "protocol version"),
        ({"v": ...}, "protocol version"),
        ({"extra": 1}, "unknown field"),
        ({"product": 5}, "'product' must be a string"),
        ({"product": "Writer"}, "lowercase"),
        ({"product": ""}, "1–64 characters"),
        ({"key": "x" * 65}, "1–64"),
        ({"cmid": "not-a-uuid-but-long-enough-1234567"}, "UUID"),
        ({"cmid": "short"}, "32–36"),
        ({"fingerprint": "XYZ" * 8}, "hexadecimal"),
        ({"fingerprint": "ab"}, "16–128"),
        ({"machine": "a" * 256}, "1–255"),
        ({"machine": "pc\n1"}, "control characters"),
        ({"client_time": 1.5}, "integer"),
        ({"client_time": -1}, "between"),
        ({"client_time": 2**60}, "between"),
        ({"nonce": "abcdef"}, "16–64 bytes"),
        ({"nonce": "a+b/" * 8}, "base64url"),
        ({"nonce": "A" * 200}, "characters"),
        ({"nonce": "A" * 21 + "="}, "base64url"),
        ({"state": "active"}, "one of"),
        ({"state": None}, "must be a string"),
    ],
)
def test_each_field_is_strict(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_activation_request(body(**changes))


@pytest.mark.parametrize("value", [None, [], "x", 1, 1.5])
def test_body_must_be_an_object(value: Any) -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        parse_activation_request(value)


def test_unknown_versions_are_refused_clearly() -> None:
    with pytest.raises(UnsupportedVersion, match="version 2 is not supported") as info:
        parse_activation_request(body(v=2))
    assert info.value.details == {"supported": [1]}


def test_padded_nonce_is_accepted() -> None:
    parsed = parse_activation_request(body(nonce="A" * 22 + "=="))
    assert parsed.nonce == "A" * 22
