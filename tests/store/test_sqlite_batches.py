"""The SQLite writer does runs of activations in bulk; it must decide exactly as one by one.

The reference is the memory store, awaited request by request. The SQLite store gets the same
operations in order, a chunk in each pass of the event loop (the store queues each pass's writes
together), so its writer takes them in batches of one or more chunks, whatever the timing gives,
with repeated CMIDs, blocks and several clocks inside one batch.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from volact.core.errors import NotFound
from volact.core.host_machine import Decision, GroupView
from volact.store import MemoryStore, SQLiteStore, Store

from .helpers import DAY, GROUP, T0, activate, cmid, request

Operation = tuple[str, int, int, str]  # (kind, client number, now, fingerprint)


def operations(seed: int, size: int = 300) -> list[Operation]:
    rng = random.Random(seed)
    made: list[Operation] = []
    for _ in range(size):
        n = rng.randrange(25)  # few clients: many ask twice within one batch
        now = T0 + rng.choice([0, 0, 0, 1, 2, 31 * DAY])  # the last one ages earlier clients out
        kind = rng.choices(["activate", "block", "unblock"], [20, 1, 1])[0]
        made.append((kind, n, now, rng.choice(["aa" * 8, "bb" * 8])))
    return made


async def apply(
    store: Store, operation: Operation, passes: int = 0
) -> tuple[str, int, str | None] | str:
    """Apply ``operation`` after ``passes`` passes of the event loop."""
    for _ in range(passes):
        await asyncio.sleep(0)
    kind, n, now, fingerprint = operation
    if kind == "activate":
        decision = await activate(store, request(n, now, fingerprint=fingerprint), now)
        written = decision.write.cmid if decision.write else None
        return (str(decision.outcome), decision.count, written)
    try:
        changed = await (store.block if kind == "block" else store.unblock)(cmid(n), now)
    except NotFound:
        return "not found"
    return f"changed {changed}"


@pytest.mark.parametrize(("seed", "chunk"), [(0, 300), (1, 7), (2, 40), (3, 64)])
async def test_batched_activations_decide_as_one_by_one(
    tmp_path: Path, seed: int, chunk: int
) -> None:
    ops = operations(seed)
    reference = MemoryStore()
    await reference.open()
    expected = [await apply(reference, operation) for operation in ops]

    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    try:
        got = await asyncio.gather(
            *(apply(store, operation, index // chunk) for index, operation in enumerate(ops))
        )
        assert store.batches <= -(-len(ops) // chunk) < len(ops)  # the run really was batched
        assert got == expected
        for now in (T0, T0 + 31 * DAY):
            assert await store.counts(now) == await reference.counts(now)
        stored = {
            (c.cmid, c.fingerprint, c.blocked, c.first_seen, c.last_seen, c.valid_until)
            for c in await store.clients()
        }
        known = {
            (c.cmid, c.fingerprint, c.blocked, c.first_seen, c.last_seen, c.valid_until)
            for c in await reference.clients()
        }
        assert stored == known
        assert await store.stats() == await reference.stats()
    finally:
        await store.close()
        await reference.close()


async def test_a_decide_that_raises_fails_its_request_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "host.db")
    await store.open()

    def broken(view: GroupView) -> Decision:
        raise LookupError("bug in decide")

    try:
        calls = [activate(store, request(n)) for n in range(3)]
        calls.insert(1, store.activate(GROUP, cmid(9), T0, broken))
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[1], LookupError)
        assert [r.count for r in results if isinstance(r, Decision)] == [1, 2, 3]
        assert sorted(c.cmid for c in await store.clients()) == sorted(cmid(n) for n in range(3))
        assert (await store.stats()).total == 3
    finally:
        await store.close()


async def test_the_writes_of_one_pass_of_the_event_loop_are_one_batch(tmp_path: Path) -> None:
    """Requests read in one pass of the event loop share one transaction and one commit, however
    soon the writer thread wakes up: it is handed them together."""
    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    try:
        before = store.batches
        decisions = await asyncio.gather(*(activate(store, request(n)) for n in range(50)))
        assert store.batches == before + 1
        # Each sees the ones before it (the count is capped at twice the threshold, plus one).
        assert [decision.count for decision in decisions[:11]] == list(range(1, 12))
        await asyncio.gather(activate(store, request(60)), store.block(cmid(0), T0))
        assert store.batches == before + 2
    finally:
        await store.close()
