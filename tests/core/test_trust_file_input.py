"""The files of the vendor's trust lifecycle are read by the one rule every volact file is read
by (:func:`volact.core.offline.parse_file`): damaged input is a ``bad_request`` that says what
the file is not, never an internal error (a deeply nested JSON used to raise RecursionError)."""

from __future__ import annotations

import pytest

from volact.core import host_renewal, revocation
from volact.core.errors import BadRequest, UnsupportedVersion


@pytest.mark.parametrize(
    "text",
    ["[" * 30_000, "{nope", '"a string"', '{"format": "volact-mak-request", "v": 1}', "x" * 70_000],
)
def test_a_damaged_renewal_request_is_a_bad_request(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        host_renewal.parse_renewal_file(text)
    assert "host renewal request" in caught.value.message


def test_a_renewal_request_of_another_version_says_so() -> None:
    with pytest.raises(UnsupportedVersion) as caught:
        host_renewal.parse_renewal_file({"format": host_renewal.RENEWAL_REQUEST_FORMAT, "v": 9})
    assert "host renewal request file has version 9" in caught.value.message


@pytest.mark.parametrize(
    "text", ["[" * 30_000, "{nope", '{"format": "volact-mak-request", "v": 1}']
)
def test_a_damaged_revocation_list_file_is_a_bad_request(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        revocation.read_revocation_file(text)
    assert "revocation list" in caught.value.message


def test_deeply_nested_json_is_malformed_input_wherever_it_is_read() -> None:
    """A descriptor, a usage report, or a host's answer (from whatever answers on the network)
    nested deeper than the parser goes is bad input in the one error shape, never a
    RecursionError escaping into the vendor's app."""
    from volact.core import descriptor, usage
    from volact.core.errors import VolactError
    from volact.net.transport import interpret

    nested = "[" * 30_000
    with pytest.raises(BadRequest, match="not valid JSON"):
        descriptor.load_descriptor(nested)
    with pytest.raises(BadRequest, match="not JSON"):
        usage.read_report(nested)
    with pytest.raises(VolactError):
        interpret("http://192.0.2.1:7688/v1/activate", 200, nested.encode(), 64 * 1024)
