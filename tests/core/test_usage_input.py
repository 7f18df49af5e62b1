"""A usage report file with malformed parts is refused with a clear ``bad_request`` naming the
part (issue 20 review): never an internal error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from volact.core import usage
from volact.core.errors import BadRequest


def _report(**changes: Any) -> str:
    data: dict[str, Any] = {
        "format": usage.REPORT_FORMAT,
        "v": usage.REPORT_VERSION,
        "vendor_id": "acme",
        "from": 0,
        "to": 86400,
        "first_seq": 1,
        "prev_hash": usage.GENESIS,
        "events": [[1, 10, "seen", "g", "c", "h", "0" * 64]],
        "heads": [],
        "certificates": [],
        "daily": {},
        "monthly": {},
    }
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize("part", ["heads", "certificates"])
@pytest.mark.parametrize("value", [5, "abc", {"a": 1}, [5], [None]])
def test_a_malformed_list_of_tokens_is_a_bad_request_naming_it(part: str, value: Any) -> None:
    with pytest.raises(BadRequest, match=f"usage report's {part}"):
        usage.read_report(_report(**{part: value}))


def test_well_formed_lists_of_tokens_are_read() -> None:
    report = usage.read_report(_report(heads=["v4.public.x"], certificates=["v4.public.y"]))
    assert (report.heads, report.certificates) == (("v4.public.x",), ("v4.public.y",))
