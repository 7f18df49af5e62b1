"""The offline file readers and writers (core/offline.py): what a stranger's file can be, and the
precise error each wrong file gets. Pure: keys are made in memory, nothing is served or stored."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from tests.factories import T0, Vendor, request
from volact import crypto
from volact.core import offline
from volact.core.errors import BadRequest, UnsupportedVersion

HOST_ID = "host-1"
REQUEST_ID = "6f1c2a0e-8d4b-4c55-9a43-2d1f0b7e9c11"


HOST_KEY_TEXT = "HOST-KEY-TEXT"


def host_request(host_key: crypto.SigningKey) -> offline.HostActivationRequest:
    unproved = offline.HostActivationRequest(
        request_id=REQUEST_ID,
        host_id=HOST_ID,
        host_key=host_key.public_key.paserk,
        key_serial="host-0123456789abcdef01234567",
        machine="host-machine",
        created_at=T0,
    )
    return offline.make_host_proof(unproved, HOST_KEY_TEXT)


def host_response(vendor: Vendor, host_key: crypto.SigningKey, host_id: str = HOST_ID) -> Any:
    return offline.HostActivationResponse(
        request_id=REQUEST_ID,
        host_id=HOST_ID,
        vendor_id=vendor.vendor_id,
        vendor_name="Acme Corp",
        root_keys=(vendor.root.public_key.paserk,),
        certificate=vendor.certificate(host_key, host_id=host_id).token,
    )


def token_file(file_format: str, token: str) -> str:
    version = offline.HOST_REQUEST_VERSION if file_format == offline.HOST_REQUEST_FORMAT else 1
    return json.dumps({"format": file_format, "v": version, "token": token})


# --- parse_file ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["x" * 65, b"x" * 65])
def test_a_file_over_the_limit_is_refused_before_it_is_decoded(source: str | bytes) -> None:
    with pytest.raises(BadRequest, match="larger than 64 bytes; it is not a MAK activation"):
        offline.parse_file(source, expected=[offline.MAK_REQUEST_FORMAT], limit=64)


def test_a_host_request_file_over_64_kib_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"larger than 65536 bytes.*host activation request"):
        offline.read_host_request(" " * (offline.MAX_HOST_FILE_BYTES + 1))


def test_a_file_at_the_limit_is_read() -> None:
    text = json.dumps({"format": offline.MAK_REQUEST_FORMAT, "v": 1})
    data = offline.parse_file(text, expected=[offline.MAK_REQUEST_FORMAT], limit=len(text))
    assert data == {"format": offline.MAK_REQUEST_FORMAT, "v": 1}


def test_a_truncated_file_is_not_json() -> None:
    with pytest.raises(BadRequest, match=r"not valid JSON .*expected a host activation response"):
        offline.read_host_response('{"format": "volact-host-act')


def test_a_json_value_that_is_not_an_object() -> None:
    with pytest.raises(BadRequest, match=r"not a MAK activation response file \(not a JSON obj"):
        offline.parse_file(
            [1, 2],  # type: ignore[arg-type]  # an online body may be any JSON value
            expected=[offline.MAK_RESPONSE_FORMAT],
            limit=100,
        )


def test_a_file_of_another_known_format_is_named() -> None:
    text = json.dumps({"format": offline.MAK_RESPONSE_FORMAT, "v": 1})
    with pytest.raises(
        BadRequest, match="this file is a MAK activation response file; expected a host"
    ) as caught:
        offline.read_host_request(text)
    assert caught.value.details == {"format": offline.MAK_RESPONSE_FORMAT}


@pytest.mark.parametrize("file_format", ["volact-licence", 7, None])
def test_a_wrong_format_name_is_not_a_known_kind(file_format: object) -> None:
    with pytest.raises(BadRequest, match="not a volact file of a known kind") as caught:
        offline.read_mak_response({"format": file_format, "v": 1})
    assert caught.value.details == {"format": file_format if isinstance(file_format, str) else None}


@pytest.mark.parametrize("version", [2, "1", None])
def test_a_file_of_another_version_asks_for_an_upgrade(version: object) -> None:
    text = json.dumps({"format": offline.MAK_BATCH_FORMAT, "v": version})
    with pytest.raises(
        UnsupportedVersion, match=rf"MAK activation batch file has version {version!r}.*upgrade"
    ) as caught:
        offline.read_mak_requests(text)
    assert caught.value.details == {"supported": [1]}


# --- read_request_file -----------------------------------------------------------------------


@pytest.mark.parametrize("file_format", offline.REQUEST_FORMATS)
def test_a_request_file_names_each_request_kind(file_format: str) -> None:
    version = offline.HOST_REQUEST_VERSION if file_format == offline.HOST_REQUEST_FORMAT else 1
    text = json.dumps({"format": file_format, "v": version})
    assert offline.read_request_file(text)["format"] == file_format
    assert offline.read_request_file(text.encode())["format"] == file_format


def test_a_request_file_is_not_a_response() -> None:
    text = json.dumps({"format": offline.HOST_RESPONSE_FORMAT, "v": 1})
    with pytest.raises(
        BadRequest,
        match="is a host activation response file; expected a host activation request or MAK "
        "activation request or MAK activation batch file",
    ):
        offline.read_request_file(text)


# --- host activation request -----------------------------------------------------------------


def test_a_host_request_round_trips_through_its_file_and_its_body() -> None:
    host_key = crypto.SigningKey.generate()
    signed = offline.sign_host_request(host_key, host_request(host_key))
    from_file = offline.read_host_request(signed.to_file())
    from_body = offline.read_host_request(signed.to_json())
    assert from_file == from_body == host_request(host_key)
    assert from_file.token == signed.token


def test_an_unsigned_host_request_has_no_file() -> None:
    with pytest.raises(ValueError, match="the request is not signed"):
        host_request(crypto.SigningKey.generate()).to_file()


def test_a_host_request_must_name_the_key_that_signs_it() -> None:
    named, other = crypto.SigningKey.generate(), crypto.SigningKey.generate()
    with pytest.raises(ValueError, match="must name the key that signs it"):
        offline.sign_host_request(other, host_request(named))


def test_an_oversized_token_is_refused_by_its_length() -> None:
    text = token_file(offline.HOST_REQUEST_FORMAT, "v4.public." + "A" * offline.MAX_TOKEN_CHARS)
    with pytest.raises(BadRequest, match="field 'token' must be 1–16384 characters long"):
        offline.read_host_request(text)


def test_a_token_that_is_not_a_token_is_damaged() -> None:
    with pytest.raises(BadRequest, match="host activation request's signed token is damaged"):
        offline.read_host_request(token_file(offline.HOST_REQUEST_FORMAT, "not-a-token"))


def test_a_token_whose_payload_is_not_an_object() -> None:
    footer = json.dumps({"typ": offline.HOST_REQUEST_KIND}).encode()
    token = crypto.sign_message(crypto.SigningKey.generate(), b"[1, 2]", footer)
    with pytest.raises(
        BadRequest, match="host activation request's signed token does not hold an object"
    ):
        offline.read_host_request(token_file(offline.HOST_REQUEST_FORMAT, token))


def test_a_host_request_signed_by_another_key_does_not_verify() -> None:
    named, other = crypto.SigningKey.generate(), crypto.SigningKey.generate()
    token = crypto.sign(other, offline.HOST_REQUEST_KIND, host_request(named).payload())
    with pytest.raises(BadRequest, match="host activation request's signature does not verify"):
        offline.read_host_request(token_file(offline.HOST_REQUEST_FORMAT, token))


def test_a_signed_host_request_with_an_unknown_field() -> None:
    host_key = crypto.SigningKey.generate()
    payload = {**host_request(host_key).payload(), "zone": "x", "admin": True}
    token = crypto.sign(host_key, offline.HOST_REQUEST_KIND, payload)
    with pytest.raises(
        BadRequest, match=r"the host activation request has unknown field.*: admin, zone"
    ):
        offline.read_host_request(token_file(offline.HOST_REQUEST_FORMAT, token))


@pytest.mark.parametrize("version", [1, 3, None])
def test_a_signed_host_request_of_another_payload_version(version: object) -> None:
    host_key = crypto.SigningKey.generate()
    payload = {**host_request(host_key).payload(), "v": version}
    token = crypto.sign(host_key, offline.HOST_REQUEST_KIND, payload)
    with pytest.raises(
        UnsupportedVersion,
        match=rf"the host activation request has version {version!r}; this program reads",
    ):
        offline.read_host_request(token_file(offline.HOST_REQUEST_FORMAT, token))


def test_a_signed_host_request_with_a_bad_request_id() -> None:
    host_key = crypto.SigningKey.generate()
    payload = {**host_request(host_key).payload(), "request_id": "z" * 32}
    token = crypto.sign(host_key, offline.HOST_REQUEST_KIND, payload)
    with pytest.raises(BadRequest, match="field 'request_id' must be a UUID"):
        offline.read_host_request(token_file(offline.HOST_REQUEST_FORMAT, token))


# --- host activation response ----------------------------------------------------------------


def test_a_host_response_round_trips_with_its_certificate() -> None:
    vendor, host_key = Vendor(), crypto.SigningKey.generate()
    signed = offline.sign_host_response(vendor.root, host_response(vendor, host_key))
    response, certificate = offline.read_host_response(signed.to_file())
    assert response == host_response(vendor, host_key)
    assert (certificate.host_id, certificate.vendor_id) == (HOST_ID, "acme")
    assert offline.read_host_response(signed.to_json())[0].token == signed.token


def test_an_unsigned_host_response_has_no_file() -> None:
    with pytest.raises(ValueError, match="the response is not signed"):
        host_response(Vendor(), crypto.SigningKey.generate()).to_file()


def test_a_host_response_must_list_the_root_that_signs_it() -> None:
    vendor = Vendor()
    with pytest.raises(ValueError, match="signing root key must be listed in the response"):
        offline.sign_host_response(
            crypto.SigningKey.generate(), host_response(vendor, crypto.SigningKey.generate())
        )


def test_a_host_response_whose_certificate_names_another_host() -> None:
    vendor, host_key = Vendor(), crypto.SigningKey.generate()
    unsigned = host_response(vendor, host_key, host_id="host-2")
    signed = offline.sign_host_response(vendor.root, unsigned)
    with pytest.raises(BadRequest, match="certificate names another host than the response"):
        offline.read_host_response(signed.to_file())


def test_a_signed_host_response_with_an_unknown_field() -> None:
    vendor, host_key = Vendor(), crypto.SigningKey.generate()
    payload = {**host_response(vendor, host_key).payload(), "discount": 50}
    token = crypto.sign(vendor.root, offline.HOST_RESPONSE_KIND, payload)
    with pytest.raises(
        BadRequest, match=r"the host activation response has unknown field.*: discount"
    ):
        offline.read_host_response(token_file(offline.HOST_RESPONSE_FORMAT, token))


def test_a_host_response_signed_by_an_unlisted_root_does_not_verify() -> None:
    vendor, host_key = Vendor(), crypto.SigningKey.generate()
    token = crypto.sign(
        crypto.SigningKey.generate(),
        offline.HOST_RESPONSE_KIND,
        host_response(vendor, host_key).payload(),
    )
    with pytest.raises(BadRequest, match="host activation response's signature does not verify"):
        offline.read_host_response(token_file(offline.HOST_RESPONSE_FORMAT, token))


# --- MAK requests and batches ----------------------------------------------------------------


def test_a_mak_request_file_and_a_batch_file_round_trip() -> None:
    one, two = request(), request()
    assert offline.read_mak_requests(offline.mak_request_file(one)) == [one]
    assert offline.read_mak_requests(offline.mak_batch_file([one, two])) == [one, two]


@pytest.mark.parametrize("count", [0, offline.MAX_BATCH_ENTRIES + 1])
def test_a_batch_file_holds_1_to_1000_requests(count: int) -> None:
    one = request()
    with pytest.raises(BadRequest, match=f"a batch holds 1–1000 requests, not {count}"):
        offline.mak_batch_file([one] * count)


@pytest.mark.parametrize("entries", [[], "x", None])
def test_a_batch_without_a_list_of_requests(entries: object) -> None:
    text = json.dumps({"format": offline.MAK_BATCH_FORMAT, "v": 1, "requests": entries})
    with pytest.raises(BadRequest, match="field 'requests' must be a list of 1–1000 requests"):
        offline.read_mak_requests(text)


def test_a_bad_batch_entry_is_named_by_its_position() -> None:
    good = request().to_json()
    text = json.dumps({"format": offline.MAK_BATCH_FORMAT, "v": 1, "requests": [good, 3]})
    with pytest.raises(BadRequest, match=r"^request 2 of the batch: the request body must be a"):
        offline.read_mak_requests(text)


def test_a_bad_single_request_keeps_its_own_message() -> None:
    text = json.dumps({"format": offline.MAK_REQUEST_FORMAT, "v": 1, "request": {"v": 9}})
    with pytest.raises(UnsupportedVersion, match=r"^protocol version 9 is not supported") as caught:
        offline.read_mak_requests(text)
    assert "entry" not in caught.value.details


def test_merge_keeps_the_newest_request_of_each_machine() -> None:
    cmid = str(uuid.uuid4())
    newer = request(cmid=cmid, client_time=T0 + 10)
    older = request(cmid=cmid, client_time=T0)
    other_machine = request(cmid=cmid, fingerprint="cd" * 16, client_time=T0)
    # The older duplicate comes second, so the newest kept stays kept.
    assert offline.merge_mak_requests([newer, older, other_machine]) == [newer, other_machine]
    assert offline.merge_mak_requests([older, newer]) == [newer]
    same_time = replace(older, nonce="later")
    assert offline.merge_mak_requests([older, same_time]) == [same_time]


# --- MAK responses ---------------------------------------------------------------------------


CMID = "6f1c2a0e-8d4b-4c55-9a43-2d1f0b7e9c11"
FP = "ab" * 16


def test_a_mak_response_round_trips_tickets_and_errors() -> None:
    entries = [
        offline.MAKResponseEntry(CMID, FP, ticket="v4.public.ticket"),
        offline.MAKResponseEntry(
            CMID, "cd" * 16, error={"code": "key_exhausted", "message": "no", "details": {"n": 1}}
        ),
    ]
    text = offline.mak_response_file("acme", T0, entries)
    assert offline.read_mak_response(text) == ("acme", entries)


def test_a_mak_response_error_with_odd_details_gets_empty_details() -> None:
    error = {"code": "invalid_key", "message": "bad key", "details": [1]}
    data = {
        "format": offline.MAK_RESPONSE_FORMAT,
        "v": 1,
        "vendor_id": "acme",
        "entries": [{"cmid": CMID, "fingerprint": FP, "error": error}],
    }
    _, entries = offline.read_mak_response(data)
    assert entries[0].error == {"code": "invalid_key", "message": "bad key", "details": {}}


@pytest.mark.parametrize("entries", [None, {"cmid": CMID}, [{}] * 1001])
def test_a_mak_response_without_a_list_of_entries(entries: object) -> None:
    data = {"format": offline.MAK_RESPONSE_FORMAT, "v": 1, "vendor_id": "acme", "entries": entries}
    with pytest.raises(BadRequest, match="field 'entries' must be a list of at most 1000 entries"):
        offline.read_mak_response(data)


def test_a_mak_response_entry_with_neither_ticket_nor_error() -> None:
    data = {
        "format": offline.MAK_RESPONSE_FORMAT,
        "v": 1,
        "vendor_id": "acme",
        "entries": [{"cmid": CMID, "fingerprint": FP}],
    }
    with pytest.raises(BadRequest, match=r"^error must be a JSON object"):
        offline.read_mak_response(data)
