"""The admin report's intervals: the host's one rule (GroupPolicy.with_admin_intervals); a
choice the host refuses to start with (out of bounds, 0 included) is shown as written."""

from __future__ import annotations

import pytest

from volact.core.durations import DAY, HOUR, MINUTE
from volact.core.policy import GroupPolicy
from volact.host.report import shown_intervals

POLICY = GroupPolicy()  # renewal 7 days, retry 2 hours, bounds 15 minutes to 30 days


@pytest.mark.parametrize(
    ("renewal", "retry", "shown"),
    [
        (None, None, (7 * DAY, 2 * HOUR)),  # nothing chosen: the vendor's
        (DAY, HOUR, (DAY, HOUR)),  # chosen within the bounds: the admin's
        (0, 0, (0, 0)),  # 0 is a choice like any other (the host refuses it): as written
        (60, 31 * DAY, (60, 31 * DAY)),  # outside the bounds (the host refuses it): as written
        (DAY, None, (DAY, 2 * HOUR)),
        (None, 30 * MINUTE, (7 * DAY, 30 * MINUTE)),
    ],
)
def test_shown_intervals(renewal: int | None, retry: int | None, shown: tuple[int, int]) -> None:
    assert shown_intervals(POLICY, renewal, retry) == shown


def test_within_the_bounds_it_is_the_hosts_own_rule() -> None:
    effective = POLICY.with_admin_intervals(DAY, HOUR)
    assert shown_intervals(POLICY, DAY, HOUR) == (
        effective.renewal_interval,
        effective.retry_interval,
    )
