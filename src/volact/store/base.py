"""The host's persistence port: a small async :class:`Store` Protocol and its records.

Rules every store follows (the memory, SQLite and PostgreSQL stores alike):

1. Time is a value. Every method that depends on time takes ``now`` (int Unix seconds) and binds
   it as a parameter; no store computes time in SQL or reads a clock.
2. :meth:`Store.activate` is one transaction: read the client's row and the group's count, call
   ``decide`` (pure, fast, no I/O), apply ``decision.write``, insert ``decision.events``, bump the
   statistics, commit — and only then return. A caller that got an answer has a durable write.
3. The count is the number of unblocked CMIDs of the group with ``last_seen >= now -
   COUNT_WINDOW``. With ``count_limit`` set, a store may stop counting at that number, so the
   lookup costs O(threshold) however many clients the group has: the count in the view is then
   *capped* (``min(exact, count_limit)``), and the count a decision reports (the view's, plus
   the newcomer) is at most ``count_limit + 1``. :meth:`Store.counts` is always exact.
4. A client write keeps ``first_seen``, never moves ``last_seen`` back, and only raises
   ``valid_until`` (a ``None`` in the write leaves it as it was). Written once, in the batch
   model (:func:`volact.core.batch.merge`); within a batch each decision sees the batch's
   earlier writes (:class:`volact.core.batch.BatchOverlay`).
5. Statistics are derived from decisions: ``total``; ``failed`` (every outcome except
   ``activated`` and ``below_threshold``); ``outcome.<outcome>``; and ``state.<client state>``
   taken from the ``state`` detail of the decision's ``activation_request`` event when present.
6. Storage failures (disk full, read-only or missing directory, unreachable database) raise
   :class:`~volact.core.errors.StorageError` with a plain message, and leave nothing half-written.
7. :meth:`Store.activate` calls ``seal`` (when given) with its decision, on the caller's event
   loop, before it returns; the host signs its tickets there. ``seal`` may run before the commit
   is durable, so what it makes must not leave the process until ``activate`` has returned: if
   the commit fails, ``activate`` raises and the sealed result is never answered. The SQLite
   store hands a batch's decisions to the loop just before its writer thread sends COMMIT, and
   one callback seals them all while the COMMIT (and its fsync) runs, so the signatures (which
   release the interpreter lock) overlap the fsync; the answers wait for the COMMIT to return.
   The PostgreSQL store calls ``seal`` after its COMMIT returned, the memory store after its
   write. If ``seal`` raises, that call alone fails with its exception; the write stands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from volact.core.batch import Decide, KnownClient
from volact.core.host_machine import Decision, Event, Outcome

__all__ = [
    "CLIENT_COLUMNS",
    "CLIENT_UPSERT",
    "EVENT_RETENTION_ROWS",
    "EVENT_RETENTION_SECONDS",
    "HOUR",
    "KNOWN_GROUPS",
    "ClientSearch",
    "Decide",
    "EventRecord",
    "KnownClient",
    "Seal",
    "Stats",
    "Store",
    "client_total_query",
    "count_limit_for",
    "event_record",
    "events_query",
    "hourly_query",
    "hourly_rows",
    "known_client",
    "stat_deltas",
]

# Outcomes that are not counted as "failed" requests in the statistics.
NOT_FAILED = frozenset({Outcome.ACTIVATED, Outcome.BELOW_THRESHOLD})

# Event retention defaults (the host service enforces them periodically).
EVENT_RETENTION_SECONDS = 90 * 86400
EVENT_RETENTION_ROWS = 100_000

Seal = Callable[[Decision], None]


@dataclass(frozen=True)
class EventRecord:
    """One stored event; ``id`` grows with insertion order."""

    id: int
    kind: str
    at: int
    cmid: str | None
    group: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    """Request statistics since the store was created."""

    total: int = 0
    failed: int = 0
    by_outcome: Mapping[str, int] = field(default_factory=dict)
    by_state: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> Stats:
        """Build from the flat ``name -> value`` rows that stores keep."""
        by_outcome = {
            name.removeprefix("outcome."): value
            for name, value in sorted(counters.items())
            if name.startswith("outcome.")
        }
        by_state = {
            name.removeprefix("state."): value
            for name, value in sorted(counters.items())
            if name.startswith("state.")
        }
        return cls(counters.get("total", 0), counters.get("failed", 0), by_outcome, by_state)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "failed": self.failed,
            "by_outcome": dict(self.by_outcome),
            "by_state": dict(self.by_state),
        }


def stat_deltas(decision: Decision) -> dict[str, int]:
    """The statistics one decision adds (rule 5), as ``name -> increment``."""
    deltas = {"total": 1, f"outcome.{decision.outcome}": 1}
    if decision.outcome not in NOT_FAILED:
        deltas["failed"] = 1
    for event in decision.events:
        if event.kind == "activation_request":
            state = event.details.get("state")
            if isinstance(state, str) and state:
                deltas[f"state.{state}"] = 1
            break
    return deltas


def count_limit_for(threshold: int) -> int:
    """The count cap a host uses for a group: enough to tell "reached" and show some margin."""
    return max(2 * threshold, threshold + 1)


@runtime_checkable
class Store(Protocol):
    """What the host needs from its storage. See the module docstring for the rules."""

    url: str
    """The store's URL with any password removed (safe to print)."""

    async def open(self) -> None:
        """Connect, apply pending migrations, start any writer. Raises StorageError."""

    async def close(self) -> None:
        """Finish every queued write, commit, and release connections. Idempotent."""

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
        """Read, decide, write, commit — one transaction (rule 2) — then ``seal`` the decision
        (rule 7). Returns ``decide``'s result."""

    async def record(self, decision: Decision) -> None:
        """Store the events and statistics of a decision that needs no client write."""

    async def record_event(self, event: Event) -> None:
        """Store one event that belongs to no request (e.g. ``dns_publish_failed``)."""

    async def clients(
        self, group: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[KnownClient]:
        """Clients ordered by (group, first_seen, cmid); every group when ``group`` is None."""

    async def client_total(self, group: str | None = None) -> int:
        """How many clients :meth:`clients` would list with no limit (so a page can say that
        the list was cut, and of how many)."""

    async def events(
        self,
        *,
        limit: int = 100,
        since: int | None = None,
        until: int | None = None,
        kind: str | None = None,
        cmid: str | None = None,
    ) -> list[EventRecord]:
        """The newest ``limit`` events (``since <= at <= until``, of ``kind``, about ``cmid``),
        newest first. Every filter is the store's, so one CMID's events are found however old
        they are (within retention)."""

    async def stats(self) -> Stats:
        """Request statistics (rule 5)."""

    async def counts(self, now: int) -> dict[str, int]:
        """Exact count per group at ``now`` (groups with no counted client are left out)."""

    async def known(self) -> dict[str, int]:
        """How many clients (CMIDs) each group knows, blocked and uncounted ones included."""

    async def requests_per_hour(self, since: int) -> dict[int, tuple[int, int]]:
        """Activation requests recorded at or after ``since``, per hour (Unix seconds // 3600):
        (how many were activated, how many in all). Hours without one are left out."""

    async def search_clients(self, search: ClientSearch) -> tuple[int, list[KnownClient]]:
        """The clients matching ``search`` (how many in all, and one page of them), in the
        order of :meth:`clients`."""

    async def block(self, cmid: str, now: int) -> int:
        """Block a CMID in every group it is known in; returns the rows changed.

        Records a ``client_blocked`` event. Raises NotFound when the CMID is unknown.
        """

    async def unblock(self, cmid: str, now: int) -> int:
        """Unblock a CMID; the reverse of :meth:`block` (``client_unblocked`` event)."""

    async def cmids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """The distinct known CMIDs that start with ``prefix`` (lower case), in order, at most
        ``limit`` (what lets an admin type the 8 characters the tables show)."""

    async def prune_events(self, before: int, keep: int = EVENT_RETENTION_ROWS) -> int:
        """Delete events older than ``before`` and all but the newest ``keep``; returns how many."""


CLIENT_COLUMNS = (
    "cmid, group_id, product, fingerprint, machine, state, blocked, first_seen, last_seen, "
    "valid_until"
)
# How both SQL dialects write a merged row over a known one: the columns the batch model may
# change are replaced; ``blocked`` and ``first_seen`` stay as they are.
_MERGED_COLUMNS = ("product", "fingerprint", "machine", "state", "last_seen", "valid_until")
CLIENT_UPSERT = "ON CONFLICT (cmid, group_id) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in _MERGED_COLUMNS
)


@dataclass(frozen=True)
class ClientSearch:
    """The admin's search of the known clients: ``text`` matches a CMID prefix or a part of the
    machine name (case-insensitively); ``group`` and ``blocked`` narrow it; one page of
    ``limit`` from ``offset``."""

    text: str = ""
    group: str | None = None
    blocked: bool | None = None
    limit: int = 50
    offset: int = 0

    def matches(self, record: KnownClient) -> bool:
        """The rule, for a store that filters in Python (the SQL stores use :meth:`where`)."""
        if self.group is not None and record.group != self.group:
            return False
        if self.blocked is not None and record.blocked != self.blocked:
            return False
        text = self.text.strip().lower()
        return not text or record.cmid.startswith(text) or text in record.machine.lower()

    def where(self, mark: str) -> tuple[str, list[Any]]:
        """The same rule as a SQL ``WHERE`` (placeholders written as ``mark``) and parameters."""
        conditions: list[str] = []
        params: list[Any] = []
        if self.group is not None:
            conditions.append(f"group_id = {mark}")
            params.append(self.group)
        if self.blocked is not None:
            conditions.append(f"blocked = {mark}")
            params.append(1 if self.blocked else 0)
        text = self.text.strip().lower()
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(
                f"(cmid LIKE {mark} ESCAPE '\\' OR LOWER(machine) LIKE {mark} ESCAPE '\\')"
            )
            params += [escaped + "%", "%" + escaped + "%"]
        return (f"WHERE {' AND '.join(conditions)} " if conditions else ""), params


HOUR = 3600


def hourly_query(outcome: str, mark: str) -> str:
    """``Store.requests_per_hour`` in SQL: ``outcome`` is the dialect's expression of an event's
    ``details.outcome``; its one parameter is ``since``."""
    return (
        f"SELECT at / {HOUR}, SUM(CASE WHEN {outcome} = 'activated' THEN 1 ELSE 0 END), COUNT(*) "
        f"FROM events WHERE kind = 'activation_request' AND at >= {mark} GROUP BY at / {HOUR}"
    )


def hourly_rows(rows: Sequence[Sequence[Any]]) -> dict[int, tuple[int, int]]:
    return {int(hour): (int(activated or 0), int(total)) for hour, activated, total in rows}


# Both SQL dialects: the clients each group knows (``Store.known``).
KNOWN_GROUPS = "SELECT group_id, COUNT(*) FROM clients GROUP BY group_id ORDER BY group_id"


def known_client(row: Sequence[Any]) -> KnownClient:
    """A :class:`KnownClient` from a row of ``CLIENT_COLUMNS``, for the SQL stores."""
    return KnownClient(
        cmid=row[0],
        group=row[1],
        product=row[2],
        fingerprint=row[3],
        machine=row[4],
        state=row[5],
        blocked=bool(row[6]),
        first_seen=int(row[7]),
        last_seen=int(row[8]),
        valid_until=None if row[9] is None else int(row[9]),
    )


def client_total_query(group: str | None, mark: str) -> tuple[str, list[Any]]:
    """The SQL and parameters that count the clients of ``group`` (every group: None)."""
    if group is None:
        return "SELECT COUNT(*) FROM clients", []
    return f"SELECT COUNT(*) FROM clients WHERE group_id = {mark}", [group]


def events_query(
    *,
    limit: int,
    since: int | None,
    kind: str | None,
    mark: str,
    cmid: str | None = None,
    until: int | None = None,
) -> tuple[str, list[Any]]:
    """The SQL (placeholders written as ``mark``: ``?`` or ``%s``) and parameters that list
    events newest first, for the SQL stores."""
    conditions: list[str] = []
    params: list[Any] = []
    if since is not None:
        conditions.append(f"at >= {mark}")
        params.append(since)
    if until is not None:
        conditions.append(f"at <= {mark}")
        params.append(until)
    if kind is not None:
        conditions.append(f"kind = {mark}")
        params.append(kind)
    if cmid is not None:
        conditions.append(f"cmid = {mark}")
        params.append(cmid)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = (
        f"SELECT id, kind, at, cmid, group_id, details FROM events {where}"
        f"ORDER BY id DESC LIMIT {mark}"
    )
    return sql, [*params, limit]


def event_record(row: Sequence[Any]) -> EventRecord:
    """An :class:`EventRecord` from a row of :func:`events_query`."""
    return EventRecord(int(row[0]), row[1], int(row[2]), row[3], row[4], json.loads(row[5]))
