"""The error codes are one table, and every code has a typed error and complete docs."""

from __future__ import annotations

import pytest

from volact.core.errors import (
    CODES,
    ERROR_CLASSES,
    BadRequest,
    InternalError,
    VolactError,
    error_body,
    error_from_code,
)

SPEC_CODES = {
    "bad_request",
    "unsupported_version",
    "product_unknown",
    "product_not_hosted",
    "invalid_key",
    "count_insufficient",
    "time_skew",
    "client_blocked",
    "rate_limited",
    "host_not_activated",
    "key_exhausted",
    "internal",
    "no_host_found",
    "host_unreachable",
    "invalid_host_certificate",
    "invalid_ticket",
    "clock_tampered",
}


def test_every_spec_code_exists_and_has_a_class() -> None:
    assert SPEC_CODES <= set(CODES)
    assert set(ERROR_CLASSES) == set(CODES)
    for code, cls in ERROR_CLASSES.items():
        assert cls.code == code and issubclass(cls, VolactError)


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_is_explained(code: str) -> None:
    info = CODES[code]
    assert info.where in {"host", "client", "vendor", "any"}
    for text in (info.summary, info.explanation, info.remedy):
        assert text.endswith((".", ")", "`")) and len(text) > 10


def test_the_one_error_shape() -> None:
    body = error_body(BadRequest("field 'v' is missing", {"field": "v"}))
    assert body == {
        "ok": False,
        "error": {
            "code": "bad_request",
            "message": "field 'v' is missing",
            "details": {"field": "v"},
        },
    }


def test_error_from_code() -> None:
    err = error_from_code("time_skew", "off by 5 hours", {"skew": 18000})
    assert err.code == "time_skew" and str(err) == "off by 5 hours"
    assert isinstance(error_from_code("made_up", "x"), InternalError)
