"""The batch model's own rules (core/batch.py), pure: merge, the overlay's views, and its guard
against a decision that writes another client than it was asked about."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import T0
from volact.core.batch import BatchOverlay, Decide, KnownClient, merge
from volact.core.errors import InternalError
from volact.core.host_machine import ClientWrite, Decision, GroupView, Outcome

CMID = "6f1c2a0e-8d4b-4c55-9a43-2d1f0b7e9c11"
OTHER = "0b7e9c11-8d4b-4c55-9a43-2d1f6f1c2a0e"
GROUP = "office-2026"


def write(cmid: str = CMID, group: str = GROUP, seen_at: int = T0) -> ClientWrite:
    return ClientWrite(cmid, group, "writer-2026", "ab" * 16, "pc-1", seen_at, "licensed", None)


def decision(client_write: ClientWrite | None) -> Decision:
    return Decision(Outcome.BELOW_THRESHOLD, GROUP, 1, 5, client_write, (), None)


def test_merge_of_an_unknown_client_is_the_write() -> None:
    assert merge(None, write()) == KnownClient(
        CMID, GROUP, "ab" * 16, False, T0, T0, "writer-2026", "pc-1", "licensed", None
    )


def test_merge_keeps_first_seen_blocked_and_the_later_last_seen_and_valid_until() -> None:
    known = KnownClient(CMID, GROUP, "cd" * 16, True, T0 - 9, T0 + 5, "old", "pc-0", "x", T0 + 99)
    merged = merge(known, write(seen_at=T0))
    assert merged == KnownClient(
        CMID, GROUP, "ab" * 16, True, T0 - 9, T0 + 5, "writer-2026", "pc-1", "licensed", T0 + 99
    )


@pytest.mark.parametrize("other_write", [write(cmid=OTHER), write(group="other-2026")])
def test_a_decision_that_writes_another_client_is_an_internal_error(
    other_write: ClientWrite,
) -> None:
    overlay = BatchOverlay({})
    with pytest.raises(InternalError, match="a decision wrote another client than it was asked"):
        overlay.decide(GROUP, CMID, T0, 0, None, lambda view: decision(other_write))
    assert overlay.written == {}


def test_each_decision_sees_the_batchs_earlier_writes_capped() -> None:
    overlay = BatchOverlay({})
    views: list[GroupView] = []

    def record(client_write: ClientWrite | None) -> Decide:
        def decide(view: GroupView) -> Decision:
            views.append(view)
            return decision(client_write)

        return decide

    overlay.decide(GROUP, CMID, T0, 3, 4, record(write()))
    overlay.decide(GROUP, OTHER, T0, 3, 4, record(write(cmid=OTHER)))
    overlay.decide(GROUP, OTHER, T0, 3, 4, record(None))
    assert [view.count for view in views] == [3, 4, 4]
    assert views[2].client == merge(None, write(cmid=OTHER))
    assert list(overlay.written) == [(CMID, GROUP), (OTHER, GROUP)]


@pytest.mark.parametrize(
    ("known_until", "written_until", "merged_until"),
    [
        (None, T0 + 9, T0 + 9),
        (T0 + 5, T0 + 9, T0 + 9),
        (T0 + 9, T0 + 5, T0 + 9),
        (T0 + 9, None, T0 + 9),
    ],
)
def test_merge_only_raises_valid_until(
    known_until: int | None, written_until: int | None, merged_until: int
) -> None:
    known = replace(merge(None, write()), valid_until=known_until)
    client_write = ClientWrite(
        CMID, GROUP, "writer-2026", "ab" * 16, "pc-1", T0 + 1, "licensed", written_until
    )
    merged = merge(known, client_write)
    assert (merged.valid_until, merged.last_seen) == (merged_until, T0 + 1)
