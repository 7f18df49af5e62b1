from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.factories import Vendor
from volact import crypto
from volact.core.descriptor import ProductDescriptor, load_descriptor, sign_descriptor
from volact.core.errors import BadRequest, UnsupportedVersion


def test_round_trip_through_the_file() -> None:
    vendor = Vendor()
    descriptor = vendor.descriptor(activation_url="http://vendor.example:7689")
    loaded = load_descriptor(descriptor.to_file())
    assert loaded == descriptor
    assert loaded.activation_url == "http://vendor.example:7689"
    assert load_descriptor(descriptor.to_file().encode()) == descriptor
    assert load_descriptor(json.loads(descriptor.to_file())) == descriptor
    assert [k.key_id for k in loaded.verify_keys()] == [vendor.root.key_id]


def test_rotation_any_listed_root_key_may_sign() -> None:
    vendor = Vendor()
    new_root = crypto.SigningKey.generate()
    unsigned = replace(
        vendor.descriptor(), root_keys=(vendor.root.public_key.paserk, new_root.public_key.paserk)
    )
    signed = sign_descriptor(new_root, unsigned)
    assert load_descriptor(signed.to_file()).root_keys == unsigned.root_keys


def test_signer_must_be_listed_and_unsigned_cannot_be_written() -> None:
    vendor = Vendor()
    unsigned = replace(vendor.descriptor(), token="")
    with pytest.raises(ValueError, match="not signed"):
        unsigned.to_file()
    with pytest.raises(ValueError, match="listed"):
        sign_descriptor(crypto.SigningKey.generate(), unsigned)


def _file_with_payload(root: crypto.SigningKey, payload: dict[str, object]) -> str:
    token = crypto.sign(root, "product_descriptor", payload)
    return json.dumps({"format": "volact-product-descriptor", "v": 1, "token": token})


def test_tampered_payload_is_refused() -> None:
    vendor = Vendor()
    text = vendor.descriptor().to_file()
    data = json.loads(text)
    parts = data["token"].split(".")
    body = parts[2]
    data["token"] = ".".join(
        [*parts[:2], body[:-5] + ("A" if body[-5] != "A" else "B") + body[-4:], parts[3]]
    )
    with pytest.raises(BadRequest, match="signature does not verify"):
        load_descriptor(json.dumps(data))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"format": "other"}', "not a volact product descriptor"),
        ('{"format": "volact-product-descriptor", "v": 1, "token": 3}', "must be a string"),
        ('{"format": "volact-product-descriptor", "v": 1, "token": "v4.public.x"}', "malformed"),
        ("x" * 70000, "too large"),
    ],
)
def test_bad_files(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        load_descriptor(text)


def test_unsupported_versions() -> None:
    vendor = Vendor()
    with pytest.raises(UnsupportedVersion):
        load_descriptor({"format": "volact-product-descriptor", "v": 2, "token": "x"})
    payload = {**vendor.descriptor().payload(), "v": 2}
    with pytest.raises(UnsupportedVersion):
        load_descriptor(_file_with_payload(vendor.root, payload))


def test_payload_fields_are_validated() -> None:
    vendor = Vendor()
    good = vendor.descriptor().payload()
    changes: list[tuple[dict[str, Any], str]] = [
        ({"srv_service": "volact"}, "srv_service"),
        ({"product": "Has Spaces"}, "product"),
        ({"oob_grace": -1}, "oob_grace"),
        ({"rearm_limit": 1000}, "rearm_limit"),
    ]
    for change, message in changes:
        with pytest.raises(BadRequest, match=message):
            load_descriptor(_file_with_payload(vendor.root, {**good, **change}))


def test_descriptor_keys_must_be_readable() -> None:
    vendor = Vendor()
    payload = {**vendor.descriptor().payload(), "root_keys": ["k4.public.bad"]}
    with pytest.raises(BadRequest, match="signature does not verify"):
        load_descriptor(_file_with_payload(vendor.root, payload))


def test_defaults() -> None:
    d = ProductDescriptor("a", "A", ("k",), "p", "P", "g", "gvlk")
    assert d.srv_service == "_volact._tcp" and d.oob_grace == 30 * 86400 and d.rearm_limit == 5
