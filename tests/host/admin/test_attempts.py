"""The limit on failed dashboard sign-ins (volact.host.admin.attempts), with time passed in."""

from __future__ import annotations

import pytest

from volact.core.errors import RateLimited
from volact.host.admin.attempts import FailedSignIns

A = "192.0.2.1"
B = "192.0.2.2"


def retry_after(limiter: FailedSignIns, address: str, now: float) -> int:
    with pytest.raises(RateLimited) as refused:
        limiter.check(address, now)
    assert refused.value.code == "rate_limited"
    assert address in refused.value.message
    return int(refused.value.details["retry_after"])


def test_the_eleventh_attempt_after_ten_failures_in_a_minute_is_refused() -> None:
    limiter = FailedSignIns(max_failures=10, window=60)
    for n in range(10):
        limiter.check(A, 1000 + n)  # each attempt is allowed, then fails
        limiter.failed(A, 1000 + n)
    assert retry_after(limiter, A, 1010) == 50  # the first failure (at 1000) leaves at 1060
    assert retry_after(limiter, A, 1059.5) == 1  # never 0: a client must wait a little
    limiter.check(B, 1010)  # another address is not concerned
    limiter.check(A, 1060)  # the first failure is out of the window: one more attempt


def test_the_window_slides_with_each_failure() -> None:
    limiter = FailedSignIns(max_failures=3, window=60)
    for at in (0, 30, 50):
        limiter.failed(A, at)
    assert retry_after(limiter, A, 55) == 5
    limiter.check(A, 60)  # the one at 0 left; 30 and 50 remain
    limiter.failed(A, 61)
    assert retry_after(limiter, A, 61) == 29  # until the one at 30 leaves
    limiter.check(A, 111)  # only 61 remains


def test_a_right_token_forgets_the_failures() -> None:
    limiter = FailedSignIns(max_failures=3, window=60)
    for at in (0, 1):
        limiter.failed(A, at)
    limiter.succeeded(A)
    for at in (2, 3):
        limiter.failed(A, at)
    limiter.check(A, 4)  # two failures since the success, not four
    limiter.failed(A, 4)
    assert retry_after(limiter, A, 5) == 57  # until the one at 2 leaves


def test_failures_beyond_the_limit_do_not_lengthen_the_wait() -> None:
    limiter = FailedSignIns(max_failures=2, window=60)
    for at in range(100):  # counted without a check first: a caller that skipped it
        limiter.failed(A, at)
    assert retry_after(limiter, A, 99) == 59  # the two newest (98 and 99) decide


def test_the_addresses_remembered_are_bounded() -> None:
    limiter = FailedSignIns(max_failures=1, window=60, max_addresses=3)
    for n in range(5):
        limiter.failed(f"192.0.2.{10 + n}", 0)
    limiter.check("192.0.2.10", 1)  # the oldest two were dropped
    limiter.check("192.0.2.11", 1)
    for n in (12, 13, 14):
        assert retry_after(limiter, f"192.0.2.{n}", 1) == 59
