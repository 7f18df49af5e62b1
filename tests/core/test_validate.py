from __future__ import annotations

import pytest

from volact.core import validate
from volact.core.errors import BadRequest


def test_optional_readers() -> None:
    assert validate.optional_string({}, "x") is None
    assert validate.optional_string({"x": "a"}, "x") == "a"
    assert validate.optional_integer({"x": None}, "x") is None
    assert validate.optional_integer({"x": 3}, "x") == 3


def test_string_list() -> None:
    assert validate.string_list({"x": ["a", "b"]}, "x") == ["a", "b"]
    for bad in [[], "a", [1], ["a"] * 100]:
        with pytest.raises(BadRequest):
            validate.string_list({"x": bad}, "x")


def test_identifier_and_hex() -> None:
    assert validate.check_identifier("office-2026", "group") == "office-2026"
    with pytest.raises(BadRequest, match="lowercase"):
        validate.check_identifier("-bad", "group")
    with pytest.raises(BadRequest, match="hexadecimal"):
        validate.hex_text({"f": "AB" * 8}, "f")


def test_base64url_bad_padding() -> None:
    with pytest.raises(BadRequest, match="base64url"):
        validate.base64url({"n": "A"}, "n", min_bytes=1, max_bytes=64)


def test_lone_surrogates_are_refused() -> None:
    assert validate.string({"m": "pc-é"}, "m") == "pc-é"
    with pytest.raises(BadRequest, match="not valid Unicode"):
        validate.string({"m": "pc-\ud800"}, "m")
