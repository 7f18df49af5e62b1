"""The batch model on every store: a batch of activations decides as its requests one at a time.

For each example, two fresh stores of the same kind meet the same history (activations and
blocks, awaited one by one); then one store gets the batch all at once (in one pass of the
event loop, so the SQLite and PostgreSQL writers take it as one transaction) and the other
gets the same requests awaited one by one. The answers (outcome, count, the client written),
the rows, the counts and the statistics must be the same. Nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scaleout.postgres import fresh_schema
from volact.core.errors import NotFound
from volact.store import MemoryStore, SQLiteStore, Store

from .helpers import DAY, GROUP, T0, activate, cmid, request

OTHER = "other-2026"  # threshold 1 in the helpers' certificate, so its count is capped at 2

# (client number, seconds after T0, fingerprint, group): the last time ages earlier clients out.
Activation = tuple[int, int, str, str]
activations = st.tuples(
    st.integers(0, 11),
    st.sampled_from([0, 0, 1, 2, 31 * DAY]),
    st.sampled_from(["aa" * 8, "bb" * 8]),
    st.sampled_from([GROUP, GROUP, OTHER]),
)
# The history before the batch: activations, and blocks/unblocks of a client (by number).
history_steps = st.one_of(
    activations.map(lambda a: ("activate", a)),
    st.tuples(st.sampled_from(["block", "unblock"]), st.integers(0, 11)),
)


async def answer(store: Store, activation: Activation) -> tuple[str, int, str | None]:
    n, after, fingerprint, group = activation
    now = T0 + after
    req = request(n, now, fingerprint=fingerprint, group=group)
    decision = await activate(store, req, now, group=group)
    written = decision.write.cmid if decision.write else None
    return str(decision.outcome), decision.count, written


async def replay(store: Store, history: list[Any]) -> None:
    for kind, what in history:
        if kind == "activate":
            await answer(store, what)
        else:
            with contextlib.suppress(NotFound):
                await (store.block if kind == "block" else store.unblock)(cmid(what), T0)


async def state(store: Store) -> tuple[Any, ...]:
    rows = await store.clients()
    counts = [await store.counts(T0 + after) for after in (0, 2, 31 * DAY)]
    return rows, counts, await store.stats()


@contextlib.asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@contextlib.contextmanager
def two_stores(kind: str) -> Iterator[tuple[Callable[[], Store], Callable[[], Store]]]:
    """Factories for two fresh, independent stores of ``kind``."""
    if kind == "memory":
        yield MemoryStore, MemoryStore
    elif kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield (
                lambda: SQLiteStore(Path(folder) / "batched.db"),
                lambda: SQLiteStore(Path(folder) / "one-by-one.db"),
            )
    else:
        from volact.store.postgres import PostgresStore

        with fresh_schema() as first, fresh_schema() as second:
            yield lambda: PostgresStore(first), lambda: PostgresStore(second)


async def check(kind: str, history: list[Any], batch: list[Activation]) -> None:
    with two_stores(kind) as (make_batched, make_one_by_one):
        async with opened(make_batched()) as batched, opened(make_one_by_one()) as one_by_one:
            await replay(batched, history)
            await replay(one_by_one, history)
            before = getattr(batched, "batches", 0)
            together = await asyncio.gather(*(answer(batched, a) for a in batch))
            if kind != "memory":
                assert batched.batches == before + 1  # type: ignore[attr-defined]
            alone = [await answer(one_by_one, a) for a in batch]
            assert together == alone
            assert await state(batched) == await state(one_by_one)


def _run(kind: str, history: list[Any], batch: list[Activation]) -> None:
    asyncio.run(check(kind, history, batch))


_examples = {"memory": 60, "sqlite": 50, "postgres": 30}


@pytest.mark.parametrize(
    "kind", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_batch_decides_as_its_requests_one_at_a_time(kind: str) -> None:
    @settings(
        max_examples=_examples[kind],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        history=st.lists(history_steps, max_size=12),
        batch=st.lists(activations, min_size=1, max_size=24),
    )
    def batches(history: list[Any], batch: list[Activation]) -> None:
        _run(kind, history, batch)

    batches()
