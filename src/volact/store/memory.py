"""A dict-based :class:`~volact.store.base.Store` for tests and the fleet simulator.

It follows every rule of :mod:`volact.store.base` (a client write is merged by the batch model,
:func:`volact.core.batch.merge`), with one difference: it forgets everything
when the process ends. Each method runs without awaiting between its read and its write, so on
one event loop every call is atomic, as a transaction would be.

Counting with ``count_limit`` costs O(count_limit) while ``now`` only moves forward: each group
keeps its clients ordered by ``last_seen`` (a refresh moves the CMID to the end), so the count
walks back from the newest and stops at the cap or at the first client outside the window. A
request that moves time backwards marks the group unordered, and counting falls back to a scan.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import replace

from volact.core.batch import KnownClient, merge
from volact.core.errors import NotFound
from volact.core.host_machine import Decision, Event, GroupView
from volact.core.policy import COUNT_WINDOW
from volact.store.base import (
    EVENT_RETENTION_ROWS,
    HOUR,
    ClientSearch,
    Decide,
    EventRecord,
    Seal,
    Stats,
    stat_deltas,
)


class _Group:
    """The clients of one group, ordered by last_seen while ``ordered`` holds."""

    def __init__(self) -> None:
        self.clients: OrderedDict[str, KnownClient] = OrderedDict()
        self.ordered = True
        self.newest = 0  # the largest last_seen so far: the tail's, while ordered

    def put(self, record: KnownClient) -> None:
        self.clients[record.cmid] = record
        self.clients.move_to_end(record.cmid)
        if record.last_seen < self.newest:
            self.ordered = False
        self.newest = max(self.newest, record.last_seen)

    def count(self, now: int, limit: int | None) -> int:
        cutoff = now - COUNT_WINDOW
        counted = 0
        for record in reversed(self.clients.values()):
            if record.last_seen < cutoff:
                if self.ordered:
                    break
                continue
            if record.blocked:
                continue
            counted += 1
            if limit is not None and counted >= limit:
                break
        return counted


class MemoryStore:
    """Implements :class:`~volact.store.base.Store` in dictionaries."""

    url = "memory://"

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self._events: list[EventRecord] = []
        self._next_event_id = 1
        self._counters: Counter[str] = Counter()
        self.opened = False

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    # --- writes ---------------------------------------------------------------------------

    def _insert_events(self, events: tuple[Event, ...] | list[Event]) -> None:
        for event in events:
            self._events.append(
                EventRecord(
                    self._next_event_id,
                    event.kind,
                    event.at,
                    event.cmid,
                    event.group,
                    dict(event.details),
                )
            )
            self._next_event_id += 1

    def _apply(self, decision: Decision) -> None:
        write = decision.write
        if write is not None:
            group = self._groups.setdefault(write.group, _Group())
            group.put(merge(group.clients.get(write.cmid), write))
        self._insert_events(decision.events)
        self._counters.update(stat_deltas(decision))

    async def activate(
        self,
        group: str,
        cmid: str,
        now: int,
        decide: Decide,
        *,
        count_limit: int | None = None,
        seal: Seal | None = None,
    ) -> Decision:
        clients = self._groups.get(group)
        row: KnownClient | None = None
        count = 0
        if clients is not None:
            row = clients.clients.get(cmid)
            count = clients.count(now, count_limit)
        decision = decide(GroupView(count, row))
        self._apply(decision)
        if seal is not None:
            seal(decision)
        return decision

    async def record(self, decision: Decision) -> None:
        self._apply(replace(decision, write=None))

    async def record_event(self, event: Event) -> None:
        self._insert_events([event])

    def _set_blocked(self, cmid: str, now: int, blocked: bool) -> int:
        changed: list[str] = []
        for name, group in self._groups.items():
            found = group.clients.get(cmid)
            if found is not None:
                # Blocking is not a request: the row keeps its place in the last_seen order.
                group.clients[cmid] = replace(found, blocked=blocked)
                changed.append(name)
        if not changed:
            raise NotFound(f"no client with CMID {cmid} is known to this host", {"cmid": cmid})
        kind = "client_blocked" if blocked else "client_unblocked"
        self._insert_events([Event(kind, now, cmid, None, {"groups": sorted(changed)})])
        return len(changed)

    async def block(self, cmid: str, now: int) -> int:
        return self._set_blocked(cmid, now, True)

    async def unblock(self, cmid: str, now: int) -> int:
        return self._set_blocked(cmid, now, False)

    async def cmids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        found = {
            c for group in self._groups.values() for c in group.clients if c.startswith(prefix)
        }
        return sorted(found)[:limit]

    async def prune_events(self, before: int, keep: int = EVENT_RETENTION_ROWS) -> int:
        kept = [event for event in self._events if event.at >= before]
        if keep >= 0 and len(kept) > keep:
            kept = kept[len(kept) - keep :]
        removed = len(self._events) - len(kept)
        self._events = kept
        return removed

    # --- reads ----------------------------------------------------------------------------

    async def clients(
        self, group: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[KnownClient]:
        records = [
            record
            for name, clients in self._groups.items()
            if group is None or name == group
            for record in clients.clients.values()
        ]
        records.sort(key=lambda r: (r.group, r.first_seen, r.cmid))
        return records[offset : offset + limit]

    async def client_total(self, group: str | None = None) -> int:
        return sum(
            len(clients.clients)
            for name, clients in self._groups.items()
            if group is None or name == group
        )

    async def events(
        self,
        *,
        limit: int = 100,
        since: int | None = None,
        until: int | None = None,
        kind: str | None = None,
        cmid: str | None = None,
    ) -> list[EventRecord]:
        found: list[EventRecord] = []
        for event in reversed(self._events):
            if len(found) >= limit:
                break
            if (
                (since is None or event.at >= since)
                and (until is None or event.at <= until)
                and (kind is None or event.kind == kind)
                and (cmid is None or event.cmid == cmid)
            ):
                found.append(replace(event, details=dict(event.details)))
        return found

    async def stats(self) -> Stats:
        return Stats.from_counters(self._counters)

    async def requests_per_hour(self, since: int) -> dict[int, tuple[int, int]]:
        hours: dict[int, tuple[int, int]] = {}
        for event in self._events:
            if event.kind == "activation_request" and event.at >= since:
                activated, total = hours.get(event.at // HOUR, (0, 0))
                ok = event.details.get("outcome") == "activated"
                hours[event.at // HOUR] = (activated + ok, total + 1)
        return hours

    async def search_clients(self, search: ClientSearch) -> tuple[int, list[KnownClient]]:
        matched = sorted(
            (
                record
                for group in self._groups.values()
                for record in group.clients.values()
                if search.matches(record)
            ),
            key=lambda r: (r.group, r.first_seen, r.cmid),
        )
        return len(matched), matched[search.offset : search.offset + search.limit]

    async def known(self) -> dict[str, int]:
        return {name: len(group.clients) for name, group in sorted(self._groups.items())}

    async def counts(self, now: int) -> dict[str, int]:
        counts = {name: group.count(now, None) for name, group in self._groups.items()}
        return {name: count for name, count in sorted(counts.items()) if count}
