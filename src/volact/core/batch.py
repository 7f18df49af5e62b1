"""The host's batch model: how a client write merges into its row, and what each decision of a
batch sees. Pure: no I/O, no clock; every store (memory, SQLite, PostgreSQL) uses it.

Rules:

1. A client write keeps ``first_seen``, never moves ``last_seen`` back, only raises
   ``valid_until`` (a ``None`` in the write leaves it as it was), keeps ``blocked``, and takes
   the write's product, fingerprint, machine and state (:func:`merge`; store rule 4).
2. Within a batch, each decision sees the batch's earlier writes: the client's row as the
   earlier requests left it, and the group's count raised by each client they made counted
   (:class:`BatchOverlay`). A store reads rows and counts once, at the start of the batch, and
   the views are the ones reading before each decision would give: only the batch writes those
   rows (the writer, or the group's lock, sees to that), and a write can only add its CMID to a
   count, since it raises ``last_seen`` and leaves ``blocked`` alone.
3. A count read at the start may be capped (``count_limit``); the view's count is the count
   read plus what the batch added, capped again, so it equals what the count query would have
   returned after the earlier writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from volact.core.errors import InternalError
from volact.core.host_machine import ClientRow, ClientWrite, Decision, GroupView

ClientKey = tuple[str, str]
"""(cmid, group): one row of the clients table."""
Decide = Callable[[GroupView], Decision]


@dataclass(frozen=True)
class KnownClient(ClientRow):
    """One CMID in one group as stored, and as an admin sees it (times in Unix seconds).

    It is the :class:`~volact.core.host_machine.ClientRow` a decision sees, plus what only the
    store and the admin need."""

    product: str
    machine: str
    state: str
    valid_until: int | None


def merge(known: KnownClient | None, write: ClientWrite) -> KnownClient:
    """The row ``write`` leaves behind when applied to ``known`` (rule 1)."""
    if known is None:
        return KnownClient(
            cmid=write.cmid,
            group=write.group,
            fingerprint=write.fingerprint,
            blocked=False,
            first_seen=write.seen_at,
            last_seen=write.seen_at,
            product=write.product,
            machine=write.machine,
            state=write.state,
            valid_until=write.valid_until,
        )
    valid_until = known.valid_until
    if write.valid_until is not None and (valid_until is None or write.valid_until > valid_until):
        valid_until = write.valid_until
    return KnownClient(
        cmid=known.cmid,
        group=known.group,
        fingerprint=write.fingerprint,
        blocked=known.blocked,
        first_seen=known.first_seen,
        last_seen=max(known.last_seen, write.seen_at),
        product=write.product,
        machine=write.machine,
        state=write.state,
        valid_until=valid_until,
    )


def _counted(row: ClientRow | None, now: int) -> int:
    return 1 if row is not None and row.counted_at(now) else 0


class BatchOverlay:
    """The rows and counts a store read at the start of a batch, with the batch's writes laid
    over them (rules 2 and 3).

    ``start`` holds the rows as read (a CMID the store does not know is absent). The store
    reads each count once per (group, now, count_limit) and passes it to :meth:`decide`;
    :attr:`written` holds the merged row of every client the batch wrote, in the order first
    written, for the store to write in one statement.
    """

    __slots__ = ("_added", "_start", "written")

    def __init__(self, start: Mapping[ClientKey, KnownClient]) -> None:
        self._start = start
        self.written: dict[ClientKey, KnownClient] = {}
        # (group, now) -> clients the batch's writes made counted at that time, for every time
        # a decision of that group has asked about so far.
        self._added: dict[str, dict[int, int]] = {}

    def client(self, cmid: str, group: str) -> KnownClient | None:
        """The client's row as the batch's earlier writes left it."""
        key = (cmid, group)
        return self.written.get(key) or self._start.get(key)

    def count(self, group: str, now: int, read: int, count_limit: int | None) -> int:
        """The group's count at ``now`` after the batch's earlier writes, from ``read`` (the
        count the store read at the start of the batch, capped at ``count_limit``)."""
        times = self._added.get(group)
        if times is None:
            times = self._added[group] = {}
        added = times.get(now)
        if added is None:
            added = times[now] = sum(
                _counted(row, now) - _counted(self._start.get(key), now)
                for key, row in self.written.items()
                if key[1] == group
            )
        count = read + added
        return count if count_limit is None else min(count, count_limit)

    def apply(self, write: ClientWrite) -> KnownClient:
        """Lay ``write`` over the batch's view; returns the merged row."""
        key = (write.cmid, write.group)
        before = self.written.get(key) or self._start.get(key)
        after = merge(before, write)
        self.written[key] = after
        times = self._added.get(write.group)
        if times:
            for now in times:
                times[now] += _counted(after, now) - _counted(before, now)
        return after

    def decide(
        self,
        group: str,
        cmid: str,
        now: int,
        read: int,
        count_limit: int | None,
        decide: Decide,
    ) -> Decision:
        """Call ``decide`` on the view of (group, cmid) and lay its write over the batch.

        Raises what ``decide`` raised, or InternalError when the decision writes another client
        than it was asked about; then nothing of it is laid over the batch."""
        view = GroupView(self.count(group, now, read, count_limit), self.client(cmid, group))
        decision = decide(view)
        write = decision.write
        if write is not None:
            if write.cmid != cmid or write.group != group:
                raise InternalError("a decision wrote another client than it was asked about")
            self.apply(write)
        return decision
