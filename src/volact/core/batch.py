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
    # Positional, in field order (cmid, group, fingerprint, blocked, first_seen, last_seen,
    # product, machine, state, valid_until): a host merges once per request.
    seen_at = write.seen_at
    if known is None:
        return KnownClient(
            write.cmid,
            write.group,
            write.fingerprint,
            False,
            seen_at,
            seen_at,
            write.product,
            write.machine,
            write.state,
            write.valid_until,
        )
    valid_until = known.valid_until
    if write.valid_until is not None and (valid_until is None or write.valid_until > valid_until):
        valid_until = write.valid_until
    return KnownClient(
        known.cmid,
        known.group,
        write.fingerprint,
        known.blocked,
        known.first_seen,
        known.last_seen if known.last_seen > seen_at else seen_at,
        write.product,
        write.machine,
        write.state,
        valid_until,
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
        # group -> now -> clients the batch's writes made counted at that time, for every time
        # a decision of that group has asked about so far.
        self._added: dict[str, dict[int, int]] = {}

    def decide(
        self,
        group: str,
        cmid: str,
        now: int,
        read: int,
        count_limit: int | None,
        decide: Decide,
    ) -> Decision:
        """Call ``decide`` on the view of (group, cmid) at ``now`` and lay its write over the
        batch. ``read`` is the group's count the store read at the start of the batch (capped
        at ``count_limit``).

        Raises what ``decide`` raised, or InternalError when the decision writes another client
        than it was asked about; then nothing of it is laid over the batch."""
        key = (cmid, group)
        written = self.written
        before = written.get(key) or self._start.get(key)
        times = self._added.get(group)
        if times is None:
            times = self._added[group] = {}
        added = times.get(now)
        if added is None:
            added = times[now] = sum(
                _counted(row, now) - _counted(self._start.get(other), now)
                for other, row in written.items()
                if other[1] == group
            )
        count = read + added
        if count_limit is not None and count > count_limit:
            count = count_limit
        decision = decide(GroupView(count, before))
        write = decision.write
        if write is not None:
            if write.cmid != cmid or write.group != group:
                raise InternalError("a decision wrote another client than it was asked about")
            after = merge(before, write)
            written[key] = after
            for at in times:
                times[at] += _counted(after, at) - _counted(before, at)
        return decision
