"""Every store finds the known CMIDs that start with a prefix (what `volact host block` needs to
accept the 8 characters the tables show)."""

from __future__ import annotations

from volact.store.base import Store

from .helpers import activate, request


async def test_cmids_with_a_prefix_in_every_store(store: Store) -> None:
    # cmid(n) is the UUID of int n + 1: 00000000-0000-0000-0000-00000000000N.
    for n in range(12):
        await activate(store, request(n))
    everyone = await store.cmids_with_prefix("00000000-", limit=100)
    assert len(everyone) == 12 and everyone == sorted(everyone)
    assert await store.cmids_with_prefix("00000000-0000-0000-0000-00000000000a") == [
        "00000000-0000-0000-0000-00000000000a"
    ]
    assert len(await store.cmids_with_prefix("00000000-0000-0000-0000-00000000000")) == 10
    assert len(await store.cmids_with_prefix("00000000", limit=3)) == 3  # at most limit
    assert await store.cmids_with_prefix("ffffffff") == []
    # A CMID known in two groups is one CMID.
    await activate(store, request(0, group="other-2026"), group="other-2026")
    assert len(await store.cmids_with_prefix("00000000-0000-0000-0000-000000000001")) == 1
