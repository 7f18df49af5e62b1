"""The scale-out store: PostgreSQL, shared by several host processes (SPEC §9).

Every host process that opens the same database (and schema) shares one count per product group.
The schema and migrations are the SQLite store's (``volact/sql/schemas/host``, dialect
``postgresql``, run by :mod:`volact.sql.migrations`); opening runs the pending ones under a
transaction-level advisory lock, so hosts that start at the same moment migrate once and never
see a half-made schema.

How a write goes (``activate``, ``record``, ``record_event``): as in the SQLite store, calls put a
job on a queue, and one writer task per process takes whatever is queued (up to
``batch_limit``) and runs it as ONE transaction with one commit, so under load many requests
share one WAL flush. The transaction has a fixed number of statements however many requests it
holds: lock the batch's groups; read every client row and count it needs (one statement);
decide each request in order, each seeing the writes of the ones before it (the batch model,
:class:`~volact.core.batch.BatchOverlay`); write every client row, event and statistic (one
statement); commit. A caller is answered only after that COMMIT returned.

Isolation (the guarantee, with the reasons in ``docs/scale-out.md``):

- Transactions run at READ COMMITTED, named in every BEGIN whatever the server's default: the
  design needs a new snapshot per statement, taken after the lock is granted (under REPEATABLE
  READ the snapshot would predate the lock and miss the previous holder's commit). Before
  reading anything, a batch takes ``pg_advisory_xact_lock`` on a key derived from (schema,
  group) for every group it will decide in, in ascending key order (so two batches never wait
  on each other in a cycle).
  The lock is released by the COMMIT, after the commit is visible, and at READ COMMITTED every
  statement sees what was committed before it started.
- Hence decisions of one group are **serialised across every host process**: each request's
  view (its client row and the count) is exactly the state left by all earlier decisions of
  that group, on any host. Concurrent newcomers never share a count, the threshold is crossed
  by exactly one decision, and no request activates below the threshold. The price: one
  group's writes are one transaction at a time across all hosts; batching keeps that
  transaction busy with many requests.
- The client row is written with ``INSERT … ON CONFLICT (cmid, group_id) DO UPDATE``: the same
  CMID at two hosts at once is one row, whatever the interleaving.
- Blocking (``block``/``unblock``) takes the same locks for the CMID's groups, so it is ordered
  with decisions too. Event pruning takes none (events are not read by decisions).
- Statistics are counters sharded over :data:`STATISTIC_SHARDS` rows per name
  (``total@0`` … ``total@15`` in the shared ``statistics`` table; the shard is the writing
  connection's backend PID modulo the number of shards). Two hosts deciding in different
  groups therefore do not serialise on one hot counter row; :meth:`PostgresStore.stats` sums
  the shards.

Failures: every database failure becomes :class:`~volact.core.errors.StorageError` with a plain
one-line message. A transaction whose connection broke before COMMIT is retried on a fresh
connection (nothing of it was committed), as is one that hit a deadlock or a serialisation
failure (at most :data:`~volact.store.postgres_pool.MAX_RETRIES` attempts; the connections,
errors and retries are :mod:`volact.store.postgres_pool`). A connection lost *during* COMMIT
fails the batch, because its outcome is unknown: the callers get ``storage_error`` and retry,
which at worst refreshes a row that was written. A batch that one request's data makes fail is
rerun one request per transaction, so that only that request fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from volact.core.batch import BatchOverlay, KnownClient
from volact.core.errors import NotFound, StorageError, UnsupportedVersion
from volact.core.host_machine import Decision, Event
from volact.core.policy import COUNT_WINDOW
from volact.sql import migrations
from volact.sql.locks import lock_key
from volact.store import postgres_queries as q
from volact.store.base import (
    EVENT_RETENTION_ROWS,
    KNOWN_GROUPS,
    ClientSearch,
    Decide,
    EventRecord,
    Seal,
    Stats,
    client_total_query,
    event_record,
    events_query,
    hourly_query,
    hourly_rows,
    known_client,
    stat_deltas,
)
from volact.store.postgres_pool import (
    ACQUIRE_TIMEOUT,
    DEFAULT_POOL_SIZE,
    LOCK_TIMEOUT,
    Connection,
    Database,
    StatementFailed,
)

T = TypeVar("T")
log = logging.getLogger("volact.store")

DEFAULT_BATCH_LIMIT = 256
STATISTIC_SHARDS = 16


@dataclass(frozen=True)
class _Activation:
    """One ``activate`` call waiting for the writer."""

    group: str
    cmid: str
    now: int
    decide: Decide
    count_limit: int | None


@dataclass(frozen=True)
class _Recording:
    """One ``record``/``record_event`` call: events and statistics, no client write."""

    events: tuple[Event, ...]
    deltas: Mapping[str, int]


class _Job:
    __slots__ = ("error", "future", "result", "work")

    def __init__(self, work: _Activation | _Recording, future: asyncio.Future[Any]) -> None:
        self.work = work
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None


_STOP = object()


class PostgresStore:
    """Implements :class:`~volact.store.base.Store` on PostgreSQL (see the module docstring).

    ``url`` is a libpq URL (``postgresql://user:password@host:port/dbname?options=…``). The
    tables live in the connection's current schema (the first of its ``search_path``), so one
    database can hold several independent volact deployments, one schema each.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        pool_size: int = DEFAULT_POOL_SIZE,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self._db = Database(
            url, pool_size=pool_size, acquire_timeout=acquire_timeout, lock_timeout=lock_timeout
        )
        self.url = self._db.url
        self.batch_limit = batch_limit
        self.pool_size = self._db.pool_size
        self.acquire_timeout = acquire_timeout
        self.lock_timeout = lock_timeout
        self._queue: asyncio.Queue[_Job | object] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._namespace = ""
        self._closed = True
        self.batches = 0
        """How many batch transactions the writer ran: a diagnostic for tests and benchmarks."""
        self._on_commit: Callable[[float, int], None] | None = None

    def observe_commits(self, callback: Callable[[float, int], None] | None) -> None:
        """Call ``callback(seconds, writes)`` on the event loop after each batch's COMMIT
        (metrics), as the SQLite store does: the transaction's time (from its first statement
        after BEGIN, lock waits included, to the acknowledged COMMIT; for a retried
        transaction, its last attempt) and how many writes it carried. Block, unblock and
        event pruning run in transactions of their own and are not reported."""
        self._on_commit = callback

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate (once, even when several hosts start at once), start the writer."""
        if not self._closed:
            return
        await self._db.open(self._migrate)
        self._namespace = self._db.namespace
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="volact-postgres-writer")
        self._closed = False

    async def close(self) -> None:
        """Run every queued write, then close the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_STOP)
        if self._writer is not None:
            await self._writer
            self._writer = None
        await self._db.close()

    async def _migrate(self, conn: Connection, namespace: str) -> None:
        def too_new(version: int, latest: int) -> UnsupportedVersion:
            return UnsupportedVersion(
                f"the database {self.url} has schema version {version}, newer than this "
                f"volact knows ({latest}); upgrade volact",
                {"schema_version": version, "supported": latest},
            )

        # Two hosts starting on a new database at once: the second waits for the lock, then
        # finds the schema made and applies nothing.
        key = lock_key("volact", namespace, "migrations")
        await migrations.migrate_postgres_async(conn, "host", too_new, key)

    # --- the writer -----------------------------------------------------------------------

    async def _submit(self, work: _Activation | _Recording) -> Any:
        if self._closed:
            raise StorageError(f"the store {self.url} is not open")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(work, future))
        return await future

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _Job)
            batch = [first]
            while len(batch) < self.batch_limit and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Job)
                batch.append(item)
            try:
                await self._run_batch(batch)
            except Exception as exc:  # a bug in the writer itself: fail the batch, go on
                log.error("the store's writer failed on a batch", exc_info=exc)
                for job in batch:
                    job.error = StorageError(f"the store's writer failed: {type(exc).__name__}")
            _resolve(batch)
        while not self._queue.empty():  # a job queued after close() must not wait forever
            item = self._queue.get_nowait()
            if isinstance(item, _Job):
                item.error = StorageError("the store was closed before this write ran")
                _resolve([item])

    async def _run_batch(self, batch: list[_Job]) -> None:
        try:
            await self._run_together(batch)
            return
        except StatementFailed as exc:
            failure: Exception = exc
        except StorageError as exc:  # the database, not a request: the whole batch fails
            for job in batch:
                job.result, job.error = None, exc
            return
        except Exception as exc:  # a write that failed in Python (e.g. text psycopg cannot send)
            failure = exc
        if len(batch) == 1:
            batch[0].result, batch[0].error = None, failure
            return
        # One request's data failed the batch's statement: rerun each request in a transaction
        # of its own, so that only that one fails.
        for job in batch:
            try:
                await self._run_together([job])
            except Exception as single:
                job.result, job.error = None, single

    async def _run_together(self, batch: list[_Job]) -> None:
        """The batch as one transaction: lock its groups, read once, decide each request in
        order, write once (clients, statistics, events), commit once."""
        self.batches += 1
        activations = [job.work for job in batch if isinstance(job.work, _Activation)]
        keys = sorted({self.group_lock(activation.group) for activation in activations})

        on_commit = self._on_commit
        started = 0.0

        async def body(conn: Connection) -> None:
            nonlocal started
            if on_commit is not None:
                started = time.perf_counter()  # again on a retry: the attempt that commits
            if keys:
                # A statement of its own: at READ COMMITTED the next statement's snapshot is
                # taken after the lock is held, so it sees every earlier decision's commit.
                await conn.execute(q.LOCK_KEYS, (keys,))
            overlay, reads = await _read_batch(conn, activations)
            events: list[Event] = []
            totals: Counter[str] = Counter()
            for job in batch:
                job.result, job.error = None, None
                work = job.work
                if isinstance(work, _Recording):
                    events.extend(work.events)
                    totals.update(work.deltas)
                    continue
                try:
                    decision = overlay.decide(
                        work.group,
                        work.cmid,
                        work.now,
                        reads[work.group, work.now - COUNT_WINDOW, work.count_limit],
                        work.count_limit,
                        work.decide,
                    )
                except Exception as exc:  # this request fails alone, having written nothing
                    job.error = exc
                    continue
                events.extend(decision.events)
                totals.update(stat_deltas(decision))
                job.result = decision
            shard = conn.info.backend_pid % STATISTIC_SHARDS
            names = sorted(totals)  # one order for every writer: no deadlock on shared shards
            await conn.execute(
                q.WRITE_BATCH,
                (
                    *q.client_columns(overlay.written.values()),
                    [f"{name}{q.SHARD_SEPARATOR}{shard}" for name in names],
                    [totals[name] for name in names],
                    *q.event_columns(events),
                ),
            )

        await self._db.transaction(body)
        if on_commit is not None:
            on_commit(time.perf_counter() - started, len(batch))

    def group_lock(self, group: str) -> int:
        """The advisory lock key that serialises decisions of ``group`` (in this schema)."""
        return lock_key("volact", self._namespace, f"group:{group}")

    # --- the Store protocol: writes -------------------------------------------------------

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
        decision: Decision = await self._submit(_Activation(group, cmid, now, decide, count_limit))
        if seal is not None:
            seal(decision)
        return decision

    async def record(self, decision: Decision) -> None:
        await self._submit(_Recording(tuple(decision.events), stat_deltas(decision)))

    async def record_event(self, event: Event) -> None:
        await self._submit(_Recording((event,), {}))

    async def _set_blocked(self, cmid: str, now: int, blocked: bool) -> int:
        kind = "client_blocked" if blocked else "client_unblocked"

        async def body(conn: Connection) -> int:
            cursor = await conn.execute(q.GROUPS_OF, (cmid,))
            groups = [str(row[0]) for row in await cursor.fetchall()]
            if not groups:
                raise NotFound(f"no client with CMID {cmid} is known to this host", {"cmid": cmid})
            # Ordered with the decisions of those groups, on every host.
            await conn.execute(q.LOCK_KEYS, (sorted({self.group_lock(g) for g in groups}),))
            changed = (await conn.execute(q.SET_BLOCKED, (int(blocked), cmid))).rowcount
            event = Event(kind, now, cmid, None, {"groups": groups})
            await conn.execute(q.INSERT_EVENTS, q.event_columns([event]))
            return int(changed)

        return await self._db.transaction(body)

    async def block(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, True)

    async def unblock(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, False)

    async def prune_events(self, before: int, keep: int = EVENT_RETENTION_ROWS) -> int:
        async def body(conn: Connection) -> int:
            removed = (await conn.execute(q.PRUNE_OLD, (before,))).rowcount
            removed += (await conn.execute(q.PRUNE_BEYOND, (max(keep, 0),))).rowcount
            return int(removed)

        return await self._db.transaction(body)

    # --- the Store protocol: reads --------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        async def body(conn: Connection) -> list[Any]:
            return await (await conn.execute(sql, params)).fetchall()

        return await self._db.read(body)

    async def clients(
        self, group: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[KnownClient]:
        sql, params = q.clients_query(group, limit, offset)
        return [known_client(row) for row in await self._fetch(sql, params)]

    async def client_total(self, group: str | None = None) -> int:
        sql, params = client_total_query(group, "%s")
        return int((await self._fetch(sql, params))[0][0])

    async def events(
        self,
        *,
        limit: int = 100,
        since: int | None = None,
        until: int | None = None,
        kind: str | None = None,
        cmid: str | None = None,
    ) -> list[EventRecord]:
        sql, params = events_query(
            limit=limit, since=since, until=until, kind=kind, cmid=cmid, mark="%s"
        )
        return [event_record(row) for row in await self._fetch(sql, params)]

    async def cmids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        rows = await self._fetch(q.CMIDS_WITH_PREFIX, [prefix, prefix + "\uffff", limit])
        return [str(row[0]) for row in rows]

    async def stats(self) -> Stats:
        rows = await self._fetch(q.SELECT_STATISTICS, [q.SHARD_SEPARATOR])
        return Stats.from_counters({str(name): int(value) for name, value in rows})

    async def requests_per_hour(self, since: int) -> dict[int, tuple[int, int]]:
        sql = hourly_query("(details::jsonb ->> 'outcome')", "%s")
        return hourly_rows(await self._fetch(sql, [since]))

    async def search_clients(self, search: ClientSearch) -> tuple[int, list[KnownClient]]:
        count, page, params = q.search_queries(search)
        total = int((await self._fetch(count, params))[0][0])
        rows = await self._fetch(page, [*params, search.limit, search.offset])
        return total, [known_client(row) for row in rows]

    async def known(self) -> dict[str, int]:
        rows = await self._fetch(KNOWN_GROUPS, [])
        return {str(group): int(count) for group, count in rows}

    async def counts(self, now: int) -> dict[str, int]:
        rows = await self._fetch(q.COUNT_GROUPS, [now - COUNT_WINDOW])
        return {str(group): int(count) for group, count in rows}


async def _read_batch(
    conn: Connection, activations: Sequence[_Activation]
) -> tuple[BatchOverlay, dict[q.CountKey, int]]:
    """The batch model over what a batch's activations read, in one statement (``READ_BATCH``),
    and the counts read, by (group, cutoff, cap)."""
    if not activations:
        return BatchOverlay({}), {}
    pairs = list(dict.fromkeys((a.cmid, a.group) for a in activations))
    counts = list(
        dict.fromkeys((a.group, a.now - COUNT_WINDOW, a.count_limit) for a in activations)
    )
    cursor = await conn.execute(q.READ_BATCH, q.read_batch_parameters(pairs, counts))
    rows, reads = q.read_batch_rows(await cursor.fetchall(), pairs, counts)
    return BatchOverlay(rows), reads


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # the caller was cancelled; the write stands regardless
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
