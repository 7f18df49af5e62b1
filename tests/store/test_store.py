"""The Store contract (volact.store.base), run on every store (see conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from volact.core.errors import NotFound
from volact.core.host_machine import Decision, Event, GroupView, Outcome, decide
from volact.core.policy import COUNT_WINDOW
from volact.store.base import ClientSearch, Store
from volact.store.memory import MemoryStore
from volact.store.sqlite import SQLiteStore

from .conftest import StoreFactory
from .helpers import CONTEXT, DAY, GROUP, PRODUCT, T0, activate, cmid, refusal, request


async def test_threshold_reached_exactly_at_the_fifth_distinct_client(store: Store) -> None:
    for n in range(4):
        decision = await activate(store, request(n))
        assert decision.outcome is Outcome.BELOW_THRESHOLD
        assert (decision.count, decision.threshold) == (n + 1, 5)
        assert decision.ticket is None
    fifth = await activate(store, request(4))
    assert fifth.outcome is Outcome.ACTIVATED
    assert (fifth.count, fifth.threshold) == (5, 5)
    assert fifth.ticket is not None and fifth.ticket.cmid == cmid(4)
    # The first four now activate too, and their rows get a valid_until.
    again = await activate(store, request(0, T0 + 60), T0 + 60)
    assert again.outcome is Outcome.ACTIVATED and again.count == 5
    rows = {row.cmid: row for row in await store.clients()}
    assert rows[cmid(0)].valid_until == T0 + 60 + 180 * DAY
    assert rows[cmid(1)].valid_until is None
    assert await store.counts(T0 + 60) == {GROUP: 5}


async def test_a_refresh_does_not_count_twice(store: Store) -> None:
    for _ in range(3):
        decision = await activate(store, request(0))
        assert decision.count == 1
    for minute in range(1, 4):
        now = T0 + minute * 60
        decision = await activate(store, request(1, now), now)
        assert decision.count == 2
    assert await store.counts(T0 + 300) == {GROUP: 2}
    assert len(await store.clients()) == 2


async def test_a_client_stops_counting_after_the_count_window(store: Store) -> None:
    await activate(store, request(0))
    await activate(store, request(1, T0 + 10 * DAY), T0 + 10 * DAY)
    assert await store.counts(T0 + COUNT_WINDOW) == {GROUP: 2}  # the edge still counts
    later = T0 + 31 * DAY
    assert await store.counts(later) == {GROUP: 1}
    decision = await activate(store, request(2, later), later)
    assert decision.count == 2  # client 1 and the newcomer; client 0 expired
    # Client 0 comes back: counted again, as a refresh of its row (first_seen kept).
    back = await activate(store, request(0, later), later)
    assert back.count == 3
    row = next(r for r in await store.clients() if r.cmid == cmid(0))
    assert (row.first_seen, row.last_seen) == (T0, later)


async def test_a_blocked_client_is_refused_and_not_counted(store: Store) -> None:
    for n in range(3):
        await activate(store, request(n))
    assert await store.block(cmid(1), T0 + 1) == 1
    assert await store.counts(T0 + 2) == {GROUP: 2}
    decision = await activate(store, request(1, T0 + 2), T0 + 2)
    assert decision.outcome is Outcome.BLOCKED and decision.code == "client_blocked"
    assert decision.write is None
    row = next(r for r in await store.clients() if r.cmid == cmid(1))
    assert row.blocked and row.last_seen == T0  # a refusal does not refresh the row
    assert (await activate(store, request(3, T0 + 3), T0 + 3)).count == 3
    assert await store.unblock(cmid(1), T0 + 4) == 1
    assert (await activate(store, request(1, T0 + 5), T0 + 5)).count == 4
    kinds = [event.kind for event in await store.events(limit=20)]
    assert "client_blocked" in kinds and "client_unblocked" in kinds


async def test_block_and_unblock_of_an_unknown_cmid_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.block(cmid(99), T0)
    with pytest.raises(NotFound):
        await store.unblock(cmid(99), T0)
    assert await store.events() == []


async def test_a_cloned_image_is_recorded_as_an_event(store: Store) -> None:
    await activate(store, request(0, fingerprint="a" * 16))
    decision = await activate(store, request(0, T0 + 60, fingerprint="b" * 16), T0 + 60)
    assert [event.kind for event in decision.events] == ["activation_request", "cloned_image"]
    assert decision.count == 1  # the same CMID does not count twice
    cloned = await store.events(kind="cloned_image")
    assert len(cloned) == 1
    assert cloned[0].cmid == cmid(0) and cloned[0].group == GROUP
    assert cloned[0].details["old_fingerprint"] == "a" * 16
    assert cloned[0].details["new_fingerprint"] == "b" * 16
    row = (await store.clients())[0]
    assert row.fingerprint == "b" * 16


async def test_client_rows_keep_first_seen_and_only_raise_validity(store: Store) -> None:
    for n in range(5):
        await activate(store, request(n))
    row = next(r for r in await store.clients() if r.cmid == cmid(4))
    assert row.valid_until == T0 + 180 * DAY
    assert (row.product, row.machine, row.state) == (PRODUCT, "pc-4", "oob_grace")
    # A request with an older time (a host clock set back) neither lowers last_seen nor validity.
    earlier = T0 - 3600
    await activate(store, request(4, earlier), earlier)
    row = next(r for r in await store.clients() if r.cmid == cmid(4))
    assert (row.first_seen, row.last_seen, row.valid_until) == (T0, T0, T0 + 180 * DAY)


async def test_statistics_and_events(store: Store) -> None:
    for n in range(5):
        await activate(store, request(n))
    await store.block(cmid(0), T0)
    await activate(store, request(0))
    skewed = request(7, T0 + 5 * 3600)
    await store.record(refusal(skewed, T0))
    await store.record_event(Event("dns_publish_failed", T0 + 9, details={"domain": "example.com"}))

    stats = await store.stats()
    assert stats.total == 7
    assert stats.failed == 2
    assert stats.by_outcome == {
        "activated": 1,
        "below_threshold": 4,
        "blocked": 1,
        "time_skew": 1,
    }
    assert stats.by_state == {"oob_grace": 6}  # the refusal from route() carries no state

    events = await store.events(limit=100)
    assert [e.kind for e in events[:3]] == [
        "dns_publish_failed",
        "activation_request",
        "activation_request",
    ]
    assert events[0].details == {"domain": "example.com"}
    assert events[1].details["outcome"] == "time_skew"
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)
    assert len(await store.events(limit=2)) == 2
    assert len(await store.events(kind="activation_request")) == 7
    assert [e.kind for e in await store.events(since=T0 + 9)] == ["dns_publish_failed"]
    # Nothing is recorded for the refused request's client.
    assert cmid(7) not in {row.cmid for row in await store.clients()}


async def test_event_pruning_by_age_and_by_rows(store: Store) -> None:
    for n in range(10):
        await store.record_event(Event("note", T0 + n * DAY, details={"n": n}))
    assert await store.prune_events(T0 + 3 * DAY, keep=100) == 3
    assert await store.prune_events(T0, keep=4) == 3
    kept = await store.events()
    assert [event.details["n"] for event in kept] == [9, 8, 7, 6]
    assert await store.prune_events(T0, keep=4) == 0


async def test_clients_listing_by_group_with_paging(store: Store) -> None:
    for n in range(3):
        await activate(store, request(n, T0 + n), T0 + n)
    other = request(10, T0, product="calc-2026", group="other-2026")
    decision = await activate(store, other, group="other-2026")
    assert decision.outcome is Outcome.ACTIVATED  # threshold 1 in that group
    everyone = await store.clients()
    assert [(r.group, r.cmid) for r in everyone] == [
        (GROUP, cmid(0)),
        (GROUP, cmid(1)),
        (GROUP, cmid(2)),
        ("other-2026", cmid(10)),
    ]
    assert [r.cmid for r in await store.clients(GROUP, limit=2, offset=1)] == [cmid(1), cmid(2)]
    assert [r.cmid for r in await store.clients("other-2026")] == [cmid(10)]
    assert await store.clients("nobody") == []
    assert await store.counts(T0 + 5) == {GROUP: 3, "other-2026": 1}


async def test_the_count_may_be_capped_but_counts_is_exact(store: Store) -> None:
    for n in range(12):
        await activate(store, request(n))
    seen: list[GroupView] = []

    def peek(view: GroupView) -> object:
        seen.append(view)
        raise LookupError("stop here")  # a decide that raises writes nothing

    with pytest.raises(LookupError):
        await store.activate(GROUP, cmid(50), T0, peek, count_limit=10)  # type: ignore[arg-type]
    assert seen[0].count == 10 and seen[0].client is None
    with pytest.raises(LookupError):
        await store.activate(GROUP, cmid(0), T0, peek)  # type: ignore[arg-type]
    assert seen[1].count == 12 and seen[1].client is not None
    assert seen[1].client.cmid == cmid(0) and seen[1].client.first_seen == T0
    assert await store.counts(T0) == {GROUP: 12}
    assert len(await store.clients()) == 12
    assert (await store.stats()).total == 12


async def test_many_concurrent_activations_are_each_stored_exactly_once(store: Store) -> None:
    decisions = await asyncio.gather(*(activate(store, request(n)) for n in range(500)))
    assert sorted(d.count for d in decisions[:4]) == [1, 2, 3, 4]
    # Each call saw its predecessors: the view's count rises one by one up to the cap
    # (2 x threshold), and the decision adds the newcomer itself.
    assert [d.count for d in decisions] == [min(n, 10) + 1 for n in range(500)]
    assert sum(d.outcome is Outcome.ACTIVATED for d in decisions) == 496
    assert len(await store.clients(limit=1000)) == 500
    assert await store.counts(T0) == {GROUP: 500}
    assert (await store.stats()).total == 500
    assert len(await store.events(limit=1000)) == 500
    if not isinstance(store, MemoryStore):
        assert 1 <= getattr(store, "batches", 0) < 500  # writes shared commits


async def test_each_commit_is_observed_with_its_time_and_its_writes(store: Store) -> None:
    # The metrics' hook (volact_store_commit_seconds / volact_store_batch_size): SQLite calls it
    # in its writer thread, PostgreSQL on the event loop; the memory store commits nothing.
    from volact.store.postgres import PostgresStore

    if isinstance(store, MemoryStore):
        assert not hasattr(store, "observe_commits")
        return
    assert isinstance(store, SQLiteStore | PostgresStore)
    seen: list[tuple[float, int]] = []
    before = store.batches
    store.observe_commits(lambda seconds, writes: seen.append((seconds, writes)))
    await asyncio.gather(*(activate(store, request(n)) for n in range(40)))
    await store.record_event(Event("note", T0))
    assert sum(writes for _, writes in seen) == 41
    assert len(seen) == store.batches - before  # one call per committed batch
    assert len(seen) < 41  # the 40 concurrent activations shared commits
    assert all(seconds > 0 for seconds, _ in seen)
    store.observe_commits(None)
    await store.record_event(Event("note", T0 + 1))
    assert sum(writes for _, writes in seen) == 41


async def test_the_count_survives_close_and_reopen(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    for n in range(4):
        await activate(first, request(n))
    await first.block(cmid(3), T0)
    await first.close()

    second = make_store()
    await second.open()
    try:
        assert await second.counts(T0 + 60) == {GROUP: 3}
        decision = await activate(second, request(4, T0 + 60), T0 + 60)
        assert decision.count == 4
        assert (await second.stats()).total == 5
        assert len(await second.events(limit=100)) == 6
    finally:
        await second.close()


async def test_a_seal_that_raises_fails_that_call_alone(store: Store) -> None:
    """Rule 7: ``seal`` sees each decision; a seal that raises fails its own call, the write
    stands, and the other calls of the same batch are answered as usual."""
    sealed: list[tuple[str, int]] = []

    def decision_for(n: int) -> Callable[[GroupView], Decision]:
        return lambda view: decide(request(n), GROUP, view, CONTEXT, T0)

    def seal(decision: Decision) -> None:
        assert decision.write is not None
        if decision.write.cmid == cmid(2):
            raise RuntimeError("the signer broke")
        sealed.append((decision.write.cmid, decision.count))

    results = await asyncio.gather(
        *(
            store.activate(GROUP, cmid(n), T0, decision_for(n), count_limit=10, seal=seal)
            for n in range(5)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[2], RuntimeError)
    assert [r.count for r in results if isinstance(r, Decision)] == [1, 2, 4, 5]
    assert sorted(sealed) == sorted((cmid(n), n + 1) for n in (0, 1, 3, 4))
    # The failed seal's write is committed all the same, and stays.
    assert await store.counts(T0) == {GROUP: 5}
    assert cmid(2) in {row.cmid for row in await store.clients()}
    assert (await store.stats()).total == 5


async def test_context_is_the_one_used_by_the_helpers() -> None:
    # The helpers decide with the real core; this keeps that promise visible.
    assert CONTEXT.policy(GROUP).threshold == 5


async def test_client_total_and_events_of_one_cmid(store: Store) -> None:
    assert await store.client_total() == 0
    for n in range(3):
        await activate(store, request(n))
    await activate(store, request(1, T0 + 60), T0 + 60)
    assert await store.client_total() == 3
    assert await store.client_total(GROUP) == 3
    assert await store.client_total("another-group") == 0
    assert len(await store.clients(limit=2)) == 2  # a page; the total says there is more
    mine = await store.events(cmid=cmid(1))
    assert [event.cmid for event in mine] == [cmid(1), cmid(1)]
    assert [e.at for e in await store.events(cmid=cmid(1), kind="activation_request")] == [
        T0 + 60,
        T0,
    ]
    assert await store.events(cmid=cmid(9)) == []


async def test_events_filter_by_time_range_kind_and_cmid_before_the_limit(store: Store) -> None:
    # One CMID's old events lie beneath many newer ones of other CMIDs; every filter is applied
    # by the store before the limit, so they are found however far back they are.
    await store.record_event(Event("note", T0, cmid(1), GROUP, {"n": 0}))
    await store.record_event(Event("cloned_image", T0 + 10, cmid(1), GROUP, {"n": 1}))
    for n in range(300):  # one by one, so their ids follow their times in every store
        await store.record_event(Event("note", T0 + 100 + n, cmid(2 + n % 7)))
    await store.record_event(Event("note", T0 + 1000, cmid(1), GROUP, {"n": 2}))

    def numbers(events: list[Any]) -> list[int]:
        return [event.details["n"] for event in events]

    assert numbers(await store.events(cmid=cmid(1))) == [2, 1, 0]
    assert numbers(await store.events(cmid=cmid(1), until=T0 + 999)) == [1, 0]
    assert numbers(await store.events(cmid=cmid(1), until=T0 + 10, limit=1)) == [1]
    assert numbers(await store.events(cmid=cmid(1), since=T0 + 1, until=T0 + 10)) == [1]
    assert numbers(await store.events(cmid=cmid(1), kind="note", until=T0 + 999)) == [0]
    assert numbers(await store.events(until=T0 + 10)) == [1, 0]  # both ends inclusive
    assert numbers(await store.events(since=T0 + 10, until=T0 + 10)) == [1]
    assert await store.events(since=T0 + 11, until=T0 + 99) == []
    assert await store.events(since=T0 + 10, until=T0) == []
    assert [e.at for e in await store.events(until=T0 + 250, limit=3)] == [
        T0 + 250,
        T0 + 249,
        T0 + 248,
    ]


async def test_known_counts_every_client_of_each_group_blocked_and_expired_too(
    store: Store,
) -> None:
    assert await store.known() == {}
    for n in range(3):
        await activate(store, request(n))
    await store.block(cmid(0), T0)
    later = T0 + COUNT_WINDOW + DAY  # clients 0-2 no longer count
    await activate(store, request(3, later), later)
    assert await store.counts(later) == {GROUP: 1}
    assert await store.known() == {GROUP: 4}


async def test_search_clients_by_cmid_prefix_or_machine_name_with_a_total(store: Store) -> None:
    for n in range(12):
        await activate(store, request(n, T0 + n), T0 + n)
    await store.block(cmid(3), T0 + 20)

    async def found(**search: Any) -> tuple[int, list[str]]:
        total, page = await store.search_clients(ClientSearch(**search))
        return total, [record.machine for record in page]

    everyone = await found(limit=100)
    assert everyone == (12, [f"pc-{n}" for n in range(12)])  # the order of clients()
    assert await found(limit=5, offset=10) == (12, ["pc-10", "pc-11"])
    assert await found(text="PC-1") == (3, ["pc-1", "pc-10", "pc-11"])  # case-insensitive
    assert await found(text=cmid(7).upper()) == (1, ["pc-7"])  # a whole CMID is a prefix
    assert await found(text=cmid(7)[:-1] + "%") == (0, [])  # LIKE's wildcards are literal
    assert await found(text="c_1") == (0, [])
    assert await found(blocked=True) == (1, ["pc-3"])
    assert (await found(blocked=False))[0] == 11
    assert await found(group="another") == (0, [])
    assert await found(group=GROUP, text="pc-2", blocked=False) == (1, ["pc-2"])


async def test_requests_per_hour_counts_activated_and_all(store: Store) -> None:
    hour = T0 // 3600
    for n in range(4):  # below the threshold of 5 …
        await activate(store, request(n, T0), T0)
    later = T0 + 2 * 3600
    await activate(store, request(4, later), later)  # … the fifth activates
    await activate(store, request(0, later), later)
    await store.record(refusal(request(9, later + 5 * 3600), later))  # a refused clock skew
    assert await store.requests_per_hour(T0) == {hour: (0, 4), hour + 2: (2, 3)}
    assert await store.requests_per_hour(later) == {hour + 2: (2, 3)}
