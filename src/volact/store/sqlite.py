"""The host's default store: one SQLite file in WAL mode, one writer thread, group commit.

How a write goes (SPEC §9, "a request is answered only after its write is committed"):

1. :meth:`SQLiteStore.activate` (and every other write) queues a job on the writer
   (:class:`~volact.sql.sqlite_writer.SQLiteWriter`) and awaits a future. The jobs made during
   one pass of the event loop go to the writer together, as one batch.
2. The one writer thread runs a batch in ONE ``BEGIN IMMEDIATE`` transaction, in order
   (:meth:`SQLiteStore._run_batch`), and adds the batch's statistics in one statement.
3. Before it COMMITs, it hands the batch's decisions to the callers' event loop, where one
   callback calls each activation's ``seal`` (the host signs its tickets there), while the
   commit's write and fsync go on in the writer thread: both let go of Python's interpreter
   lock, so the signatures and the fsync overlap. Once the COMMIT has returned, a second
   callback resolves the futures. No caller gets an answer before its write is committed; if
   the COMMIT fails, every caller of the batch gets the storage error and what ``seal`` made is
   dropped unanswered. Under load many requests share one commit (one fsync); alone, a request
   waits for its own.

Activations are the hot path, so consecutive ones in a batch (a *run*) are done in bulk rather
than one statement at a time (:meth:`SQLiteStore._run_activations`): one query per group reads
the rows of every client in the run, one query per group (and clock second) reads its count,
each ``decide`` is called in order on the batch model's view
(:class:`~volact.core.batch.BatchOverlay`: a CMID asking twice sees its first request; each
newly counted client raises the count by one, up to the cap), and then one ``executemany``
writes the merged client rows and one the events. Each decision sees exactly what it would have
seen had the requests run one by one. A ``decide`` that raises fails its own request only, and
nothing of it is written. Any other write (an event, a block) runs as its own job inside a
savepoint, so a job that raises is undone alone.

Durability: the database is in WAL mode with ``synchronous=FULL``, so an answered write survives
a power cut too; group commit keeps that to one fsync per batch. A background checkpointer
(:mod:`volact.sql.checkpointer`) copies the WAL into the database file beside the writer.

Reads for admins (``clients``, ``events``, ``stats``, ``counts``) use a separate connection, so
they work while ``volact host serve`` runs, in the same or another process.

Every :class:`sqlite3.Error` becomes :class:`~volact.core.errors.StorageError` with a plain
message (disk full, read-only or missing directory, locked database); a failed batch is rolled
back whole and every caller in it gets the error, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from volact.core.batch import BatchOverlay, KnownClient
from volact.core.errors import NotFound, StorageError, UnsupportedVersion
from volact.core.host_machine import Decision, Event
from volact.core.policy import COUNT_WINDOW
from volact.sql import migrations, sqlite_writer
from volact.sql.checkpointer import Checkpointer
from volact.sql.errors import sqlite_storage_error
from volact.sql.sqlite_writer import DEFAULT_BATCH_LIMIT, Queued, SQLiteWriter, call_on_loops
from volact.store import sqlite_queries as q
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

T = TypeVar("T")

# A job runs in the writer thread inside the batch's transaction; it may add statistics.
Job = Callable[[sqlite3.Connection, Counter[str]], T]

__all__ = ["DEFAULT_BATCH_LIMIT", "SQLiteStore"]


class _Job(Queued):
    """Any write: a function run in the writer thread inside the batch's transaction."""

    __slots__ = ("counters", "run")

    def __init__(
        self, run: Job[Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ) -> None:
        super().__init__(loop, future)
        self.run = run
        self.counters: Counter[str] = Counter()


class _Activation(Queued):
    """One :meth:`SQLiteStore.activate`, done in bulk with its neighbours in the batch. What
    ``seal`` raises goes to ``late_error``."""

    __slots__ = ("cmid", "count_limit", "decide", "group", "now", "seal")

    def __init__(
        self,
        group: str,
        cmid: str,
        now: int,
        decide: Decide,
        count_limit: int | None,
        seal: Seal | None,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        super().__init__(loop, future)
        self.group = group
        self.cmid = cmid
        self.now = now
        self.decide = decide
        self.count_limit = count_limit
        self.seal = seal


def _seal(sealing: list[tuple[_Activation, Decision]]) -> None:
    """On the callers' event loop, while the writer commits: seal each decided activation.

    The decision is the one taken when the batch was handed over: if the COMMIT fails, the
    writer thread clears ``job.result`` meanwhile."""
    for job, decision in sealing:
        assert job.seal is not None
        try:
            job.seal(decision)
        except Exception as exc:  # this request alone; its write stands
            job.late_error = exc


def _post_seals(batch: list[Queued]) -> None:
    """Hand the decided activations that asked to be sealed to their event loops."""
    sealing = [
        (job, job.result)
        for job in batch
        if isinstance(job, _Activation) and job.seal is not None and job.error is None
    ]
    call_on_loops(_seal, sealing, lambda item: item[0].loop)


class SQLiteStore:
    """Implements :class:`~volact.store.base.Store` on one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        background_checkpoints: bool = True,
    ) -> None:
        self.path = str(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            raise ValueError("SQLiteStore needs a file path (use memory:// for a memory store)")
        self.url = f"sqlite:///{self.path}"
        self.batch_limit = batch_limit
        self.background_checkpoints = background_checkpoints
        self._checkpointer: Checkpointer | None = None
        if background_checkpoints:
            self._checkpointer = Checkpointer(self.path, sqlite_writer.connect)
        self._writer = SQLiteWriter(
            self.path,
            setup=self._migrate,
            run=self._run_batch,
            before_commit=_post_seals,
            after_commit=self._checkpointer.committed if self._checkpointer else None,
            batch_limit=batch_limit,
        )
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._closed = True

    @property
    def batches(self) -> int:
        """How many transactions the writer committed (or tried to): a diagnostic for tests
        and benchmarks of group commit."""
        return self._writer.batches

    def observe_commits(self, callback: Callable[[float, int], None] | None) -> None:
        """Call ``callback(seconds, writes)`` in the writer thread after each COMMIT (metrics)."""
        self._writer.on_commit = callback

    @property
    def checkpoints(self) -> int:
        """How many background checkpoints ran (a diagnostic, like ``batches``)."""
        return self._checkpointer.checkpoints if self._checkpointer else 0

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if not self._closed:
            return
        await self._writer.start()
        self._closed = False
        if self._checkpointer is not None:
            self._checkpointer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        await self._writer.stop()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        def too_new(version: int, latest: int) -> UnsupportedVersion:
            return UnsupportedVersion(
                f"the database {self.path} has schema version {version}, newer than this "
                f"volact knows ({latest}); upgrade volact",
                {"schema_version": version, "supported": latest},
            )

        migrations.migrate_sqlite(conn, "host", too_new)

    # --- in the writer thread -------------------------------------------------------------

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Queued]) -> None:
        """The work of one batch, inside the writer's transaction."""
        totals: Counter[str] = Counter()
        run: list[_Activation] = []
        for job in batch:
            if isinstance(job, _Activation):
                run.append(job)
                continue
            if run:
                self._run_activations(conn, run, totals)
                run = []
            assert isinstance(job, _Job)
            conn.execute("SAVEPOINT job")
            try:
                job.result = job.run(conn, job.counters)
            except sqlite3.Error:
                raise  # a storage failure fails the whole batch
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                job.error = exc
            else:
                totals.update(job.counters)
            conn.execute("RELEASE job")
        if run:
            self._run_activations(conn, run, totals)
        if totals:
            conn.executemany(q.BUMP_STATISTIC, totals.items())

    def _run_activations(
        self, conn: sqlite3.Connection, run: list[_Activation], totals: Counter[str]
    ) -> None:
        """Consecutive activations of one batch, in bulk (see the module docstring).

        ``reads`` holds, per (group, now, count_limit), the count as stored (capped by the
        SQL); the batch model adds the run's writes to it."""
        overlay = BatchOverlay(q.read_clients(conn, run))
        reads: dict[tuple[str, int, int | None], int] = {}
        event_rows: list[tuple[Any, ...]] = []
        for job in run:
            count_key = (job.group, job.now, job.count_limit)
            read = reads.get(count_key)
            if read is None:
                read = reads[count_key] = q.count(conn, job.group, job.now, job.count_limit)
            try:
                decision = overlay.decide(
                    job.group, job.cmid, job.now, read, job.count_limit, job.decide
                )
            except Exception as exc:  # decide failed: this request alone, nothing written
                job.error = exc
                continue
            event_rows.extend(q.event_rows(decision.events))
            for name, value in stat_deltas(decision).items():  # Counter.update is slower
                totals[name] = totals.get(name, 0) + value
            job.result = decision
        if overlay.written:
            conn.executemany(q.UPSERT_CLIENT, [q.client_row(c) for c in overlay.written.values()])
        if event_rows:
            conn.executemany(q.INSERT_EVENT, event_rows)

    # --- queueing -------------------------------------------------------------------------

    def _new_future(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]:
        """The caller's loop and a future for a write about to be queued."""
        if self._closed:
            raise StorageError(f"the store {self.url} is not open")
        loop = asyncio.get_running_loop()
        return loop, loop.create_future()

    async def _submit(self, run: Job[T]) -> T:
        loop, future = self._new_future()
        self._writer.enqueue(_Job(run, loop, future))
        result: T = await future
        return result

    # --- reads on their own connection ----------------------------------------------------

    def _read_sync(self, run: Callable[[sqlite3.Connection], T]) -> T:
        with self._reader_lock:
            try:
                if self._reader is None:
                    self._reader = sqlite_writer.connect(self.path)
                    self._reader.execute("PRAGMA query_only = 1")
                return run(self._reader)
            except sqlite3.Error as exc:
                raise sqlite_storage_error(exc, self.path) from exc

    async def _read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StorageError(f"the store {self.url} is not open")
        return await asyncio.to_thread(self._read_sync, run)

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
        loop, future = self._new_future()
        self._writer.enqueue(_Activation(group, cmid, now, decide, count_limit, seal, loop, future))
        decision: Decision = await future
        return decision

    async def record(self, decision: Decision) -> None:
        rows = q.event_rows(decision.events)
        deltas = stat_deltas(decision)

        def run(conn: sqlite3.Connection, counters: Counter[str]) -> None:
            conn.executemany(q.INSERT_EVENT, rows)
            counters.update(deltas)

        await self._submit(run)

    async def record_event(self, event: Event) -> None:
        rows = q.event_rows([event])

        def run(conn: sqlite3.Connection, counters: Counter[str]) -> None:
            conn.executemany(q.INSERT_EVENT, rows)

        await self._submit(run)

    async def _set_blocked(self, cmid: str, now: int, blocked: bool) -> int:
        kind = "client_blocked" if blocked else "client_unblocked"

        def run(conn: sqlite3.Connection, counters: Counter[str]) -> int:
            changed = conn.execute(q.SET_BLOCKED, (int(blocked), cmid)).rowcount
            if changed == 0:
                raise NotFound(f"no client with CMID {cmid} is known to this host", {"cmid": cmid})
            groups = [row[0] for row in conn.execute(q.GROUPS_OF, (cmid,))]
            event = Event(kind, now, cmid, None, {"groups": groups})
            conn.executemany(q.INSERT_EVENT, q.event_rows([event]))
            return int(changed)

        return await self._submit(run)

    async def block(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, True)

    async def unblock(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, False)

    async def prune_events(self, before: int, keep: int = EVENT_RETENTION_ROWS) -> int:
        def run(conn: sqlite3.Connection, counters: Counter[str]) -> int:
            removed = conn.execute(q.PRUNE_OLD, (before,)).rowcount
            removed += conn.execute(q.PRUNE_BEYOND, (max(keep, 0),)).rowcount
            return int(removed)

        return await self._submit(run)

    # --- the Store protocol: reads --------------------------------------------------------

    async def clients(
        self, group: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[KnownClient]:
        sql, params = q.clients_query(group, limit, offset)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [known_client(row) for row in rows]

    async def client_total(self, group: str | None = None) -> int:
        sql, params = client_total_query(group, "?")
        row = await self._read(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])

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
            limit=limit, since=since, until=until, kind=kind, cmid=cmid, mark="?"
        )
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [event_record(row) for row in rows]

    async def cmids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        params = (prefix, prefix + "\uffff", limit)
        rows = await self._read(lambda conn: conn.execute(q.CMIDS_WITH_PREFIX, params).fetchall())
        return [str(row[0]) for row in rows]

    async def stats(self) -> Stats:
        rows = await self._read(lambda conn: conn.execute(q.SELECT_STATISTICS).fetchall())
        return Stats.from_counters({name: int(value) for name, value in rows})

    async def requests_per_hour(self, since: int) -> dict[int, tuple[int, int]]:
        sql = hourly_query("json_extract(details, '$.outcome')", "?")
        rows = await self._read(lambda conn: conn.execute(sql, (since,)).fetchall())
        return hourly_rows(rows)

    async def search_clients(self, search: ClientSearch) -> tuple[int, list[KnownClient]]:
        count, page, params = q.search_queries(search)

        def read(conn: sqlite3.Connection) -> tuple[int, list[Any]]:
            total = int(conn.execute(count, params).fetchone()[0])
            return total, conn.execute(page, [*params, search.limit, search.offset]).fetchall()

        total, rows = await self._read(read)
        return total, [known_client(row) for row in rows]

    async def known(self) -> dict[str, int]:
        rows = await self._read(lambda conn: conn.execute(KNOWN_GROUPS).fetchall())
        return {group: int(count) for group, count in rows}

    async def counts(self, now: int) -> dict[str, int]:
        rows = await self._read(
            lambda conn: conn.execute(q.COUNT_GROUPS, (now - COUNT_WINDOW,)).fetchall()
        )
        return {group: int(count) for group, count in rows}
