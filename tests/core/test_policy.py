from __future__ import annotations

import pytest

from volact.core.durations import DAY, HOUR, MINUTE, format_duration, humanize, parse_duration
from volact.core.errors import BadRequest
from volact.core.policy import GroupPolicy


def test_defaults_are_spec_section_3() -> None:
    policy = GroupPolicy()
    assert policy.validity == 180 * DAY
    assert policy.renewal_interval == 7 * DAY
    assert policy.retry_interval == 2 * HOUR
    assert policy.oot_grace == 30 * DAY
    assert policy.threshold == 5
    assert GroupPolicy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"validity": 0}, "validity 0s is outside the allowed range 1d–730d"),
        ({"validity": 731 * DAY}, "validity"),
        ({"threshold": 0}, "threshold 0 is outside the allowed range 1–1000"),
        ({"threshold": 1001}, "threshold"),
        ({"oot_grace": 181 * DAY}, "oot_grace"),
        ({"renewal_interval": 14 * MINUTE}, "renewal_interval"),
        ({"retry_interval": 31 * DAY}, "retry_interval"),
        ({"threshold": "5"}, "whole number"),
        ({"threshold": True}, "whole number"),
        ({"renewal_min": 2 * DAY, "renewal_max": DAY}, "minimum is above"),
        ({"renewal_max": 31 * DAY}, "renewal_max"),
    ],
)
def test_bounds(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        GroupPolicy(**changes)  # type: ignore[arg-type]


def test_admin_intervals_stay_inside_the_vendors_bounds() -> None:
    policy = GroupPolicy(renewal_max=10 * DAY)
    assert policy.with_admin_intervals(DAY, HOUR).renewal_interval == DAY
    assert policy.with_admin_intervals().renewal_interval == 7 * DAY
    with pytest.raises(BadRequest, match="renewal_interval"):
        policy.with_admin_intervals(renewal_interval=11 * DAY)
    with pytest.raises(BadRequest, match="retry_interval"):
        policy.with_admin_intervals(retry_interval=MINUTE)


def test_from_dict_refuses_unknown_fields_and_non_objects() -> None:
    with pytest.raises(BadRequest, match="unknown policy field"):
        GroupPolicy.from_dict({"threshold": 5, "validity_days": 900})
    with pytest.raises(BadRequest, match="JSON object"):
        GroupPolicy.from_dict([])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("180d", 180 * DAY),
        ("2h", 2 * HOUR),
        ("15m", 15 * MINUTE),
        ("30s", 30),
        ("2w", 14 * DAY),
        ("7", 7 * DAY),
        (" 3 d ", 3 * DAY),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "1y", "-1d", "1.5d", "99999999d"])
def test_parse_duration_errors(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_format_and_humanize() -> None:
    assert format_duration(180 * DAY) == "180d"
    assert format_duration(14 * DAY) == "14d"
    assert format_duration(2 * HOUR) == "2h"
    assert format_duration(15 * MINUTE) == "15m"
    assert format_duration(61) == "61s"
    assert format_duration(0) == "0s"
    assert format_duration(-HOUR) == "-1h"
    assert humanize(2 * HOUR) == "2 hours"
    assert humanize(DAY) == "1 day"
    assert humanize(90) == "2 minutes"
    assert humanize(1) == "1 second"
    assert humanize(-3 * DAY) == "3 days"
