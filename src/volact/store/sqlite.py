"""The host's default store: one SQLite file in WAL mode, one writer thread, group commit.

How a write goes (SPEC §9, "a request is answered only after its write is committed"):

1. :meth:`SQLiteStore.activate` (and every other write) adds a job to the event loop's pending
   list and awaits a future. The list goes to the writer's queue once per pass of the event loop
   (a ``call_soon`` callback), so the requests that one pass has read form one batch instead of
   being split wherever the writer thread happened to wake up (a request that just missed a
   batch waited for two; that was most of the closed-loop p99).
2. The one writer thread takes what is queued (up to about ``batch_limit`` jobs) and runs it all
   in ONE ``BEGIN IMMEDIATE`` transaction, in order, and adds the batch's statistics in one
   statement.
3. Before it COMMITs, it hands the batch's decisions to the callers' event loop, where one
   callback calls each activation's ``seal`` (the host signs its tickets there), while the
   commit's write and fsync go on in the writer thread: both let go of Python's interpreter
   lock, so the signatures and the fsync overlap. Once the COMMIT has returned, a second
   callback resolves the futures. No caller gets an answer before its write is committed; if
   the COMMIT fails, every caller of the batch gets the storage error and what ``seal`` made is
   dropped unanswered. Under load many requests share one commit (one fsync); alone, a request
   waits for its own. Signing in the writer thread, or in a thread of its own, measured slower
   (docs/benchmarks.md): each thread must win the interpreter lock back after every
   signature.

Activations are the hot path, so consecutive ones in a batch (a *run*) are done in bulk rather
than one statement at a time (:meth:`SQLiteStore._run_activations`): one query reads the rows of
every client in the run, one query per group (and clock second) reads its count, each
``decide`` is called in order on a view that includes the run's earlier writes (a CMID asking
twice sees its first request; each newly counted client raises the count by one, up to the
cap), and then one ``executemany`` writes the clients and one the events. Each decision sees
exactly what it would have seen had the requests run one by one. A ``decide`` that raises fails
its own request only, and nothing of it is written. Any other write (an event, a block) runs as
its own job inside a savepoint, so a job that raises is undone alone.

Durability: the database is in WAL mode with ``synchronous=FULL``. With ``NORMAL``, a WAL commit is
safe from a crash of the process (``kill -9``) but the last commits can be lost to a power cut,
because the WAL is only synced at checkpoints; a host that answered "activated" must not forget
it, so every commit syncs the WAL. Group commit keeps that to one fsync per batch.

Reads for admins (``clients``, ``events``, ``stats``, ``counts``) use a separate connection, so
they work while ``volact host serve`` runs, in the same or another process.

Every :class:`sqlite3.Error` becomes :class:`~volact.core.errors.StorageError` with a plain
message (disk full, read-only or missing directory, locked database); a failed batch is rolled
back whole and every caller in it gets the error, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from volact.core.errors import InternalError, NotFound, StorageError, UnsupportedVersion
from volact.core.host_machine import ClientRow, Decision, Event, GroupView
from volact.core.policy import COUNT_WINDOW
from volact.store import migrations
from volact.store.base import (
    EVENT_RETENTION_ROWS,
    ClientRecord,
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

# A job runs in the writer thread inside the batch's transaction; it may add statistics.
Job = Callable[[sqlite3.Connection, Counter[str]], T]

DEFAULT_BATCH_LIMIT = 512
BUSY_TIMEOUT_MS = 10_000
# The background checkpointer (SQLiteStore._checkpoint_loop) starts a checkpoint at the end of
# the commit that brings the writes committed since the last one to CHECKPOINT_AFTER_WRITES; if
# fewer came and then none, it copies them after IDLE_CHECKPOINT_INTERVAL seconds.
CHECKPOINT_AFTER_WRITES = 128
IDLE_CHECKPOINT_INTERVAL = 1.0


def select_clients(size: int) -> str:
    """The query for the rows of ``size`` CMIDs of one group (parameters: the CMIDs, the group)."""
    return (
        "SELECT cmid, fingerprint, blocked, first_seen, last_seen FROM clients "
        f"WHERE cmid IN ({', '.join('?' * size)}) AND group_id = ?"
    )


SELECT_CLIENT = select_clients(1)
COUNT_LIMITED = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM clients "
    "WHERE group_id = ? AND blocked = 0 AND last_seen >= ? LIMIT ?) AS counted"
)
COUNT_EXACT = "SELECT COUNT(*) FROM clients WHERE group_id = ? AND blocked = 0 AND last_seen >= ?"
# Keeps first_seen, never moves last_seen back, only raises valid_until (base.py, rule 4).
UPSERT_CLIENT = """
INSERT INTO clients (cmid, group_id, product, fingerprint, machine, state, blocked,
                     first_seen, last_seen, valid_until)
VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
ON CONFLICT (cmid, group_id) DO UPDATE SET
    product = excluded.product,
    fingerprint = excluded.fingerprint,
    machine = excluded.machine,
    state = excluded.state,
    last_seen = CASE WHEN excluded.last_seen > clients.last_seen
                     THEN excluded.last_seen ELSE clients.last_seen END,
    valid_until = CASE WHEN excluded.valid_until IS NULL THEN clients.valid_until
                       WHEN clients.valid_until IS NULL THEN excluded.valid_until
                       WHEN excluded.valid_until > clients.valid_until THEN excluded.valid_until
                       ELSE clients.valid_until END
"""
INSERT_EVENT = "INSERT INTO events (at, kind, cmid, group_id, details) VALUES (?, ?, ?, ?, ?)"
BUMP_STATISTIC = (
    "INSERT INTO statistics (name, value) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = statistics.value + excluded.value"
)
CLIENT_COLUMNS = (
    "cmid, group_id, product, fingerprint, machine, state, blocked, first_seen, last_seen, "
    "valid_until"
)


def storage_error(exc: BaseException, path: str) -> StorageError:
    """A plain message for an SQLite failure (the cause goes to the message, not a traceback)."""
    text = str(exc)
    lowered = text.lower()
    if "full" in lowered:
        reason = "the disk is full (or the database reached its size limit)"
    elif "readonly" in lowered or "read-only" in lowered:
        reason = "the database or its directory is read-only"
    elif "unable to open" in lowered:
        parent = Path(path).parent
        if not parent.exists():
            reason = f"the directory {parent} does not exist"
        else:
            reason = f"it cannot be opened (check that {parent} is writable)"
    elif "locked" in lowered or "busy" in lowered:
        reason = "it stayed locked by another process"
    elif "not a database" in lowered or "malformed" in lowered:
        reason = "the file is not a volact database, or it is damaged"
    else:
        reason = text
    return StorageError(f"the database {path} cannot be used: {reason}", {"cause": text})


class _Queued:
    """One queued write: the caller's loop and future, and what came of it."""

    __slots__ = ("error", "future", "loop", "result")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None


class _Job(_Queued):
    """Any write: a function run in the writer thread inside the batch's transaction."""

    __slots__ = ("counters", "run")

    def __init__(
        self, run: Job[Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ) -> None:
        super().__init__(loop, future)
        self.run = run
        self.counters: Counter[str] = Counter()


class _Activation(_Queued):
    """One :meth:`SQLiteStore.activate`, done in bulk with its neighbours in the batch.

    ``seal_error`` is what ``seal`` raised. It is kept apart from ``error`` because the two are
    set by different threads at the same time: ``seal`` runs on the event loop while the writer
    thread is still committing (and may fail).
    """

    __slots__ = ("cmid", "count_limit", "decide", "group", "now", "seal", "seal_error")

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
        self.seal_error: BaseException | None = None


_STOP = object()


def _resolve(jobs: list[_Queued]) -> None:
    """Runs on the caller's event loop once the batch is committed (or failed): hand each
    caller its result or error. A sealed activation's ``_seal`` callback ran before this one."""
    for job in jobs:
        if job.future.done():  # the caller was cancelled; the write stands regardless
            continue
        error = job.error
        if error is None and isinstance(job, _Activation):
            error = job.seal_error
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(job.result)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _client_record(row: tuple[Any, ...]) -> ClientRecord:
    return ClientRecord(
        cmid=row[0],
        group=row[1],
        product=row[2],
        fingerprint=row[3],
        machine=row[4],
        state=row[5],
        blocked=bool(row[6]),
        first_seen=row[7],
        last_seen=row[8],
        valid_until=row[9],
    )


def _details_json(details: dict[str, Any]) -> str:
    """An event's details as JSON text: orjson (a host writes an event per request), or the
    standard library for what orjson refuses (text with lone surrogates, huge integers)."""
    try:
        return orjson.dumps(details).decode()
    except TypeError:
        return json.dumps(details)


def _event_rows(events: tuple[Event, ...] | list[Event]) -> list[tuple[Any, ...]]:
    return [
        (event.at, event.kind, event.cmid, event.group, _details_json(event.details))
        for event in events
    ]


def _seal(sealing: list[tuple[_Activation, Decision]]) -> None:
    """On the callers' event loop, while the writer commits: seal each decided activation.

    The decision is the one taken when the batch was handed over: if the COMMIT fails, the
    writer thread clears ``job.result`` meanwhile."""
    for job, decision in sealing:
        assert job.seal is not None
        try:
            job.seal(decision)
        except Exception as exc:  # this request alone; its write stands
            job.seal_error = exc


def _read_clients(
    conn: sqlite3.Connection, run: list[_Activation]
) -> dict[tuple[str, str], ClientRow]:
    """The stored rows of the clients a run of activations asks about: one query per group.

    The number of placeholders is rounded up to a power of two (repeating a CMID), so that a
    handful of prepared statements serve every batch size.
    """
    by_group: dict[str, list[str]] = {}
    for job in run:
        by_group.setdefault(job.group, []).append(job.cmid)
    rows: dict[tuple[str, str], ClientRow] = {}
    for group, cmids in by_group.items():
        size = 1 << (len(cmids) - 1).bit_length()
        padded = [*cmids, *[cmids[0]] * (size - len(cmids)), group]
        for cmid, fingerprint, blocked, first_seen, last_seen in conn.execute(
            select_clients(size), padded
        ):
            rows[cmid, group] = ClientRow(
                cmid, group, fingerprint, bool(blocked), first_seen, last_seen
            )
    return rows


def _count(conn: sqlite3.Connection, job: _Activation) -> int:
    cutoff = job.now - COUNT_WINDOW
    if job.count_limit is None:
        row = conn.execute(COUNT_EXACT, (job.group, cutoff)).fetchone()
    else:
        row = conn.execute(COUNT_LIMITED, (job.group, cutoff, job.count_limit)).fetchone()
    return int(row[0])


def _counted(row: ClientRow | None, now: int) -> int:
    return 1 if row is not None and row.counted_at(now) else 0


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
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        # Set by the writer at the end of a commit when a checkpoint is due.
        self._checkpoint_due = threading.Event()
        self._uncheckpointed = 0  # writes committed since the last checkpoint was asked for
        self.checkpoints = 0
        """How many background checkpoints ran (a diagnostic, like ``batches``)."""
        self._queue: queue.SimpleQueue[list[_Queued] | object] = queue.SimpleQueue()
        # Writes made during the current pass of the event loop, queued together at its end.
        self._pending: list[_Queued] = []
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._closed = True
        self.batches = 0
        """How many transactions the writer committed (or tried to): a diagnostic for tests
        and benchmarks of group commit."""

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if not self._closed:
            return
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._writer = threading.Thread(
            target=self._write_loop, args=(loop, ready), name="volact-sqlite-writer", daemon=True
        )
        self._writer.start()
        await ready
        self._closed = False
        if self.background_checkpoints:
            self._stop_checkpoints.clear()
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="volact-sqlite-checkpoint", daemon=True
            )
            self._checkpointer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_checkpoints.set()
        self._checkpoint_due.set()  # wakes the checkpointer up to stop
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        self._flush()
        self._queue.put(_STOP)
        writer = self._writer
        if writer is not None:
            await asyncio.to_thread(writer.join)
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # --- the writer thread ----------------------------------------------------------------

    def _open_writer(self) -> sqlite3.Connection:
        conn = _connect(self.path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL, not NORMAL: see the module docstring (answered ⇒ durable, power cuts too).
            conn.execute("PRAGMA synchronous = FULL")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _checkpoint_loop(self) -> None:
        """Copy committed WAL pages into the database right after the writer's commits.

        SQLite checkpoints in the commit that takes the WAL past 1,000 pages: it copies them
        into the database file and syncs it, 10–30 ms in which that batch and every request
        queued behind it waits (the open-loop p99 showed it). Here a PASSIVE checkpoint runs
        on a connection of its own, so the copying happens beside the writer, which it never
        blocks. SQLite's own checkpoint still runs at 1,000 pages (it alone can start the WAL
        over while writes go on), but it then finds nearly every page copied already.

        A commit whose sync meets a checkpoint's takes longer (p90 3.5 against 1.2 ms here).
        So each checkpoint starts just after a commit, while the writer prepares its next
        batch, and copies a little: the writes since the last one, at least
        ``CHECKPOINT_AFTER_WRITES`` of them (under a 64-connection load, two batches).
        Checkpoints every 0.1 s (the first version), every 0.01 s and after every commit gave a
        closed-loop p99 of 11.4, 10.3 and 8.7 ms, after 32 or 128 writes 7.8–8.5 ms. Under a
        steady moderate load commits come every millisecond or two, and frequent checkpoints
        met many of them: the open-loop p50 at 5,000 requests/s was 3.1–3.7 ms after every 32
        writes and 2.1–2.2 ms (as with 0.1 s) after every 128 (docs/benchmarks.md). Writes
        that came while a checkpoint ran, or too few to ask for one, are copied by the next
        one, or after ``IDLE_CHECKPOINT_INTERVAL`` if nothing more comes. A failure is logged
        and tried again later; nothing is lost (the WAL still holds every commit).
        """
        conn: sqlite3.Connection | None = None
        seen = -1
        try:
            while not self._stop_checkpoints.is_set():
                signalled = self._checkpoint_due.wait(IDLE_CHECKPOINT_INTERVAL)
                if self._stop_checkpoints.is_set():
                    break
                if not signalled and self.batches == seen:
                    continue
                seen = self.batches
                try:
                    if conn is None:
                        conn = _connect(self.path)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    log.warning("a WAL checkpoint failed (tried again later): %s", exc)
                # Cleared only now, so that the next checkpoint starts at a commit's end.
                self._checkpoint_due.clear()
        finally:
            if conn is not None:
                conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        pending = migrations.migrations("sqlite")
        latest = pending[-1].version
        if self._schema_version(conn) == latest:
            return  # The common case takes no write lock, so admin commands never wait here.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(migrations.SCHEMA_VERSION_TABLE)
            current = self._schema_version(conn)
            if current > latest:
                raise UnsupportedVersion(
                    f"the database {self.path} has schema version {current}, newer than this "
                    f"volact knows ({latest}); upgrade volact",
                    {"schema_version": current, "supported": latest},
                )
            for migration in pending:
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)",
                    (migration.version, migration.name),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _write_loop(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._open_writer()
        except sqlite3.Error as exc:
            error: BaseException = storage_error(exc, self.path)
            loop.call_soon_threadsafe(_fail, ready, error)
            return
        except BaseException as exc:
            loop.call_soon_threadsafe(_fail, ready, exc)
            return
        loop.call_soon_threadsafe(_succeed, ready)
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                assert isinstance(first, list)
                batch: list[_Queued] = first
                # Whole flushes only, so a batch may pass the limit by less than one flush.
                while len(batch) < self.batch_limit:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    assert isinstance(item, list)
                    batch.extend(item)
                try:
                    self._run_batch(conn, batch)
                except Exception as exc:  # a bug in the writer itself: fail the batch, go on
                    self._abandon(conn, batch, exc)
        finally:
            conn.close()
            # A job queued after close() must not wait forever.
            self._fail_queued()

    def _abandon(self, conn: sqlite3.Connection, batch: list[_Queued], exc: Exception) -> None:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        log.error("the store's writer failed on a batch", exc_info=exc)
        for job in batch:
            job.result = None
            job.error = InternalError(f"the store's writer failed: {type(exc).__name__}")
        _post_all(batch)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, list):
                for job in item:
                    job.error = StorageError("the store was closed before this write ran")
                _post_all(item)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Queued]) -> None:
        self.batches += 1
        try:
            conn.execute("BEGIN IMMEDIATE")
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
                    raise  # a storage failure fails the whole batch (below)
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    job.error = exc
                else:
                    totals.update(job.counters)
                conn.execute("RELEASE job")
            if run:
                self._run_activations(conn, run, totals)
            if totals:
                conn.executemany(BUMP_STATISTIC, totals.items())
            _post_seals(batch)
            conn.execute("COMMIT")
            self._uncheckpointed += len(batch)
            if self._uncheckpointed >= CHECKPOINT_AFTER_WRITES:
                self._uncheckpointed = 0
                self._checkpoint_due.set()
        except sqlite3.Error as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for job in batch:
                job.result = None
                job.error = storage_error(exc, self.path)
        _post_all(batch)

    def _run_activations(
        self, conn: sqlite3.Connection, run: list[_Activation], totals: Counter[str]
    ) -> None:
        """Consecutive activations of one batch, in bulk (see the module docstring).

        ``start`` holds the rows as the run found them and ``current`` the rows the run has
        written so far (in memory until the ``executemany`` at the end). ``counts`` holds, per
        (group, now, count_limit), the count the run found (capped by the SQL) plus the clients
        the run's writes made counted; the view's count is that, capped again, so it equals what
        the count query would have returned after the earlier writes.
        """
        start = _read_clients(conn, run)
        current: dict[tuple[str, str], ClientRow] = {}
        counts: dict[tuple[str, int, int | None], int] = {}
        client_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        for job in run:
            key = (job.cmid, job.group)
            client = current.get(key) or start.get(key)
            count_key = (job.group, job.now, job.count_limit)
            count = counts.get(count_key)
            if count is None:
                count = _count(conn, job) + sum(
                    _counted(row, job.now) - _counted(start.get(written), job.now)
                    for written, row in current.items()
                    if written[1] == job.group
                )
                counts[count_key] = count
            if job.count_limit is not None:
                count = min(count, job.count_limit)
            try:
                decision = job.decide(GroupView(count, client))
                write = decision.write
                if write is not None and (write.cmid, write.group) != key:
                    raise InternalError("a decision wrote another client than it was asked about")
            except Exception as exc:  # decide failed: this request alone, nothing written
                job.error = exc
                continue
            if write is not None:
                row = ClientRow(
                    write.cmid,
                    write.group,
                    write.fingerprint,
                    client.blocked if client else False,
                    client.first_seen if client else write.seen_at,
                    max(client.last_seen, write.seen_at) if client else write.seen_at,
                )
                current[key] = row
                for group, now, limit in counts:
                    if group == job.group:
                        counts[group, now, limit] += _counted(row, now) - _counted(client, now)
                client_rows.append(
                    (
                        write.cmid,
                        write.group,
                        write.product,
                        write.fingerprint,
                        write.machine,
                        write.state,
                        write.seen_at,
                        write.seen_at,
                        write.valid_until,
                    )
                )
            event_rows.extend(_event_rows(decision.events))
            for name, value in stat_deltas(decision).items():  # Counter.update is slower
                totals[name] = totals.get(name, 0) + value
            job.result = decision
        if client_rows:
            conn.executemany(UPSERT_CLIENT, client_rows)
        if event_rows:
            conn.executemany(INSERT_EVENT, event_rows)

    def _new_future(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]:
        """The caller's loop and a future for a write about to be queued."""
        if self._closed:
            raise StorageError(f"the store {self.url} is not open")
        loop = asyncio.get_running_loop()
        return loop, loop.create_future()

    def _enqueue(self, job: _Queued) -> None:
        """Add a write to this pass of the event loop's batch (see the module docstring).

        Called on the event loop's thread, like every write method: a store serves callers
        on one thread (several loops one after another, as tests do, are fine)."""
        if self._pending_loop is not job.loop:
            self._flush()  # another loop's writes (tests use several) go first, as they came
            self._pending_loop = job.loop
            job.loop.call_soon(self._flush)
        self._pending.append(job)

    def _flush(self) -> None:
        """Hand the writes of this pass of the event loop to the writer, in the order made."""
        pending, self._pending = self._pending, []
        self._pending_loop = None
        if pending:
            self._queue.put(pending)

    async def _submit(self, run: Job[T]) -> T:
        loop, future = self._new_future()
        self._enqueue(_Job(run, loop, future))
        result: T = await future
        return result

    # --- reads on their own connection ----------------------------------------------------

    def _read_sync(self, run: Callable[[sqlite3.Connection], T]) -> T:
        with self._reader_lock:
            try:
                if self._reader is None:
                    self._reader = _connect(self.path)
                    self._reader.execute("PRAGMA query_only = 1")
                return run(self._reader)
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path) from None

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
        self._enqueue(_Activation(group, cmid, now, decide, count_limit, seal, loop, future))
        decision: Decision = await future
        return decision

    async def record(self, decision: Decision) -> None:
        rows = _event_rows(decision.events)
        deltas = stat_deltas(decision)

        def run(conn: sqlite3.Connection, counters: Counter[str]) -> None:
            conn.executemany(INSERT_EVENT, rows)
            counters.update(deltas)

        await self._submit(run)

    async def record_event(self, event: Event) -> None:
        rows = _event_rows([event])

        def run(conn: sqlite3.Connection, counters: Counter[str]) -> None:
            conn.executemany(INSERT_EVENT, rows)

        await self._submit(run)

    async def _set_blocked(self, cmid: str, now: int, blocked: bool) -> int:
        kind = "client_blocked" if blocked else "client_unblocked"

        def run(conn: sqlite3.Connection, counters: Counter[str]) -> int:
            changed = conn.execute(
                "UPDATE clients SET blocked = ? WHERE cmid = ?", (int(blocked), cmid)
            ).rowcount
            if changed == 0:
                raise NotFound(f"no client with CMID {cmid} is known to this host", {"cmid": cmid})
            groups = [
                row[0]
                for row in conn.execute(
                    "SELECT group_id FROM clients WHERE cmid = ? ORDER BY group_id", (cmid,)
                )
            ]
            conn.executemany(
                INSERT_EVENT, _event_rows([Event(kind, now, cmid, None, {"groups": groups})])
            )
            return int(changed)

        return await self._submit(run)

    async def block(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, True)

    async def unblock(self, cmid: str, now: int) -> int:
        return await self._set_blocked(cmid, now, False)

    async def prune_events(self, before: int, keep: int = EVENT_RETENTION_ROWS) -> int:
        def run(conn: sqlite3.Connection, counters: Counter[str]) -> int:
            removed = conn.execute("DELETE FROM events WHERE at < ?", (before,)).rowcount
            removed += conn.execute(
                "DELETE FROM events WHERE id <= "
                "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (max(keep, 0),),
            ).rowcount
            return int(removed)

        return await self._submit(run)

    # --- the Store protocol: reads --------------------------------------------------------

    async def clients(
        self, group: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[ClientRecord]:
        where, params = ("WHERE group_id = ?", [group]) if group is not None else ("", [])
        sql = (
            f"SELECT {CLIENT_COLUMNS} FROM clients {where} "
            "ORDER BY group_id, first_seen, cmid LIMIT ? OFFSET ?"
        )
        rows = await self._read(lambda conn: conn.execute(sql, [*params, limit, offset]).fetchall())
        return [_client_record(row) for row in rows]

    async def events(
        self, *, limit: int = 100, since: int | None = None, kind: str | None = None
    ) -> list[EventRecord]:
        sql, params = events_query(limit=limit, since=since, kind=kind, mark="?")
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [event_record(row) for row in rows]

    async def stats(self) -> Stats:
        rows = await self._read(
            lambda conn: conn.execute("SELECT name, value FROM statistics").fetchall()
        )
        return Stats.from_counters({name: int(value) for name, value in rows})

    async def counts(self, now: int) -> dict[str, int]:
        sql = (
            "SELECT group_id, COUNT(*) FROM clients WHERE blocked = 0 AND last_seen >= ? "
            "GROUP BY group_id ORDER BY group_id"
        )
        rows = await self._read(lambda conn: conn.execute(sql, (now - COUNT_WINDOW,)).fetchall())
        return {group: int(count) for group, count in rows}


def _succeed(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _post_seals(batch: list[_Queued]) -> None:
    """Hand the decided activations that asked to be sealed to their event loops."""
    sealing = [
        (job, job.result)
        for job in batch
        if isinstance(job, _Activation) and job.seal is not None and job.error is None
    ]
    _call_on_loops(_seal, sealing, lambda item: item[0].loop)


def _post_all(batch: list[_Queued]) -> None:
    """Hand every write of the batch back to its caller's event loop (see ``_resolve``)."""
    _call_on_loops(_resolve, batch, lambda job: job.loop)


def _call_on_loops(
    callback: Callable[[list[T]], None],
    items: list[T],
    loop_of: Callable[[T], asyncio.AbstractEventLoop],
) -> None:
    """Call ``callback`` once on each event loop with that loop's items, in their order."""
    by_loop: dict[asyncio.AbstractEventLoop, list[T]] = {}
    for item in items:
        by_loop.setdefault(loop_of(item), []).append(item)
    for loop, mine in by_loop.items():
        # RuntimeError: the caller's loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, mine)
