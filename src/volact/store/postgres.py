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
failure (at most :data:`MAX_RETRIES` attempts). A connection lost *during* COMMIT fails the
batch, because its outcome is unknown: the callers get ``storage_error`` and retry, which at
worst refreshes a row that was written. A batch that one request's data makes fail is rerun one
request per transaction, so that only that request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from volact.core.batch import BatchOverlay, KnownClient
from volact.core.errors import ConfigurationError, NotFound, StorageError, UnsupportedVersion
from volact.core.host_machine import Decision, Event
from volact.core.policy import COUNT_WINDOW
from volact.sql import migrations
from volact.sql.errors import is_connection_failure, one_line
from volact.sql.locks import lock_key
from volact.sql.migrations import needs_rollback
from volact.sql.urls import hide_password, redact_url, url_password
from volact.store import postgres_queries as q
from volact.store.base import (
    EVENT_RETENTION_ROWS,
    Decide,
    EventRecord,
    Seal,
    Stats,
    event_record,
    events_query,
    stat_deltas,
)

T = TypeVar("T")
log = logging.getLogger("volact.store")

Connection = psycopg.AsyncConnection[Any]

DEFAULT_BATCH_LIMIT = 256
DEFAULT_POOL_SIZE = 4
CONNECT_TIMEOUT = 5
"""Seconds one connection attempt may take (libpq ``connect_timeout``), unless the URL sets it."""
ACQUIRE_TIMEOUT = 5.0
"""Seconds a request waits for a pooled connection before it fails with ``storage_error``."""
LOCK_TIMEOUT = 15.0
"""Seconds a batch waits for another host's lock on a group before it fails with
``storage_error``, rather than queueing requests forever behind a host that hangs."""
SESSION_SETTINGS = (
    "SET statement_timeout = '30s'",
    # A host that freezes inside a transaction (and so holds a group's lock) is cut off by the
    # server after this long, which releases the lock for the other hosts.
    "SET idle_in_transaction_session_timeout = '60s'",
)
RECONNECT_TIMEOUT = 30.0
"""Seconds the pool keeps retrying one lost connection (backing off: 1, 2, 4, … s) before it gives
up and lets the next request start afresh: after an outage, the host reconnects within about
half of this once the database is back."""
STATISTIC_SHARDS = 16
MAX_RETRIES = 3
APPLICATION_NAME = "volact-host"


def _is_connection_failure(exc: BaseException, conn: Connection | None) -> bool:
    return (conn is not None and (conn.broken or conn.closed)) or is_connection_failure(exc)


class _StatementFailed(StorageError):
    """A statement failed on a good connection (bad data, a constraint): the transaction is
    rolled back, and rerunning the batch's other jobs without this one can succeed."""


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
        self.url = redact_url(url)
        self._password = url_password(url)
        self.batch_limit = batch_limit
        self.pool_size = max(pool_size, 2)
        self.acquire_timeout = acquire_timeout
        self.lock_timeout = lock_timeout
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"the database URL {self.url} cannot be read: {self._clean(one_line(str(exc)))}"
            ) from exc
        self._password = str(params.get("password") or self._password)
        self._conninfo = url
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = APPLICATION_NAME
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._queue: asyncio.Queue[_Job | object] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._namespace = ""
        self._healthy = True  # False once a connection was lost, until a statement succeeds
        self._closed = True
        self.batches = 0
        """How many batch transactions the writer ran: a diagnostic for tests and benchmarks."""

    # --- errors ---------------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        return hide_password(text, self._password)

    def _storage_error(
        self, exc: BaseException, *, lost: bool = False, committing: bool = False
    ) -> StorageError:
        """A plain, one-line StorageError for a psycopg failure (never the password).

        ``lost``: the connection broke. A statement that failed on a good connection (bad data,
        a constraint) gives a ``_StatementFailed``, which the writer answers by rerunning a
        batch one request at a time.
        """
        reason = self._clean(one_line(str(exc)))
        if isinstance(exc, pg_errors.LockNotAvailable):
            reason = "a product group stayed locked by another host (lock_timeout)"
        elif isinstance(exc, pg_errors.QueryCanceled):
            reason = f"a statement took too long (statement_timeout): {reason}"
        if committing:
            reason = f"the connection failed while committing, so the outcome is unknown: {reason}"
        message = f"the database {self.url} cannot be used: {reason}"
        if (
            not lost
            and not committing
            and isinstance(exc, psycopg.DatabaseError)
            and not isinstance(exc, psycopg.OperationalError)
        ):
            return _StatementFailed(message, {"cause": reason})
        return StorageError(message, {"cause": reason})

    async def _probe(self) -> StorageError | None:
        """Ask the server directly (not the pool) whether it answers; the reason if it does not."""
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs)
        except psycopg.Error as exc:
            return self._storage_error(exc, lost=True)
        await conn.close()
        return None

    async def _unreachable(self) -> StorageError:
        """Why no pooled connection came in time: the server's own answer, if it gives one."""
        self._healthy = False
        problem = await self._probe()
        if problem is not None:
            return problem
        return StorageError(
            f"the database {self.url} cannot be used: no pooled connection became free within "
            f"{self.acquire_timeout:g} s (every connection is busy, or the pool is still "
            "reconnecting after an outage)"
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate (once, even when several hosts start at once), start the writer."""
        if not self._closed:
            return
        self._healthy = True
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise self._storage_error(exc) from exc
        try:
            async with conn:
                schema = (
                    await (await conn.execute("SELECT current_schema()")).fetchone() or [None]
                )[0]
                if schema is None:
                    raise StorageError(
                        f"the database {self.url} cannot be used: its search_path names no "
                        "schema that exists (create the schema, or fix options=-csearch_path)"
                    )
                self._namespace = str(schema)
                await self._migrate(conn)
        except psycopg.Error as exc:
            raise self._storage_error(exc) from exc
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._conninfo,
            kwargs=self._connect_kwargs,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            configure=self._configure,
            timeout=self.acquire_timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            name=f"volact-{self._namespace}",
        )
        try:
            await pool.open(wait=True, timeout=self.acquire_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise await self._unreachable() from exc
        self._pool = pool
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="volact-postgres-writer")
        self._closed = False

    async def _configure(self, conn: Connection) -> None:
        """Session settings of every pooled connection."""
        for setting in SESSION_SETTINGS:
            await conn.execute(setting)
        await conn.execute(
            sql.SQL("SET lock_timeout = {}").format(f"{max(int(self.lock_timeout * 1000), 1)}ms")
        )

    async def close(self) -> None:
        """Run every queued write, then close the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_STOP)
        if self._writer is not None:
            await self._writer
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _migrate(self, conn: Connection) -> None:
        def too_new(version: int, latest: int) -> UnsupportedVersion:
            return UnsupportedVersion(
                f"the database {self.url} has schema version {version}, newer than this "
                f"volact knows ({latest}); upgrade volact",
                {"schema_version": version, "supported": latest},
            )

        # Two hosts starting on a new database at once: the second waits for the lock, then
        # finds the schema made and applies nothing.
        key = lock_key("volact", self._namespace, "migrations")
        await migrations.migrate_postgres_async(conn, "host", too_new, key)

    # --- connections and transactions -----------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        # Not ``_closed``: close() lets the writer finish what is queued before the pool goes.
        pool = self._pool
        if pool is None:
            raise StorageError(f"the store {self.url} is not open")
        if not self._healthy:
            # The last attempt lost the database. If it is still gone, say so now rather than
            # after waiting ``acquire_timeout`` for the pool.
            problem = await self._probe()
            if problem is not None:
                raise problem
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise await self._unreachable() from exc

    async def _transaction(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one READ COMMITTED transaction and commit; retry what is safe.

        Raises StorageError (``_StatementFailed`` for a failed statement); an exception from
        ``body`` itself propagates after the rollback.
        """
        attempt = 0
        while True:
            attempt += 1
            committing = False
            used: Connection | None = None
            try:
                async with self._connection() as conn:
                    used = conn
                    try:
                        await conn.execute(q.BEGIN)
                        result = await body(conn)
                        committing = True
                        await conn.execute("COMMIT")
                        self._healthy = True
                        return result
                    except BaseException:
                        await _rollback_quietly(conn)
                        raise
            except psycopg.Error as exc:
                lost = _is_connection_failure(exc, used)
                if lost:
                    self._healthy = False
                if committing and lost:
                    raise self._storage_error(exc, lost=True, committing=True) from exc
                retry = lost or isinstance(
                    exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
                )
                if retry and attempt < MAX_RETRIES:
                    if lost and self._pool is not None:
                        # Drop every other connection the server cut too, then try once more.
                        with contextlib.suppress(psycopg.Error):
                            await self._pool.check()
                    continue
                raise self._storage_error(exc, lost=lost) from exc

    async def _read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """A read on a pooled (autocommit) connection; retried once if the connection broke."""
        for attempt in range(2):
            used: Connection | None = None
            try:
                async with self._connection() as conn:
                    used = conn
                    result = await body(conn)
                    self._healthy = True
                    return result
            except psycopg.Error as exc:
                lost = _is_connection_failure(exc, used)
                if lost:
                    self._healthy = False
                if attempt == 0 and lost and self._pool is not None:
                    with contextlib.suppress(psycopg.Error):
                        await self._pool.check()
                    continue
                raise self._storage_error(exc, lost=lost) from exc
        raise AssertionError("unreachable")  # pragma: no cover

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
        except _StatementFailed as exc:
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

        async def body(conn: Connection) -> None:
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

        await self._transaction(body)

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

        return await self._transaction(body)

    async def block(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, True)

    async def unblock(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, False)

    async def prune_events(self, before: int, keep: int = EVENT_RETENTION_ROWS) -> int:
        async def body(conn: Connection) -> int:
            removed = (await conn.execute(q.PRUNE_OLD, (before,))).rowcount
            removed += (await conn.execute(q.PRUNE_BEYOND, (max(keep, 0),))).rowcount
            return int(removed)

        return await self._transaction(body)

    # --- the Store protocol: reads --------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        async def body(conn: Connection) -> list[Any]:
            return await (await conn.execute(sql, params)).fetchall()

        return await self._read(body)

    async def clients(
        self, group: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[KnownClient]:
        sql, params = q.clients_query(group, limit, offset)
        return [q.known_client(row) for row in await self._fetch(sql, params)]

    async def events(
        self, *, limit: int = 100, since: int | None = None, kind: str | None = None
    ) -> list[EventRecord]:
        sql, params = events_query(limit=limit, since=since, kind=kind, mark="%s")
        return [event_record(row) for row in await self._fetch(sql, params)]

    async def stats(self) -> Stats:
        rows = await self._fetch(q.SELECT_STATISTICS, [q.SHARD_SEPARATOR])
        return Stats.from_counters({str(name): int(value) for name, value in rows})

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


async def _rollback_quietly(conn: Connection) -> None:
    if needs_rollback(conn):
        with contextlib.suppress(psycopg.Error):
            await conn.execute("ROLLBACK")


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # the caller was cancelled; the write stands regardless
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
