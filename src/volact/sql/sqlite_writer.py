"""One writer thread for a SQLite file, with group commit: it knows nothing of what it writes.

As datasette's ``execute_write_fn``: callers on an event loop queue writes (:class:`Queued`)
and await their futures; the one writer thread runs whatever is queued in ONE ``BEGIN
IMMEDIATE`` transaction and commits once, so under load many writes share one fsync.

1. :meth:`SQLiteWriter.enqueue` adds a write to the event loop's pending list. The list goes
   to the writer's queue once per pass of the event loop (a ``call_soon`` callback), so the
   writes that one pass made form one batch instead of being split wherever the writer thread
   happened to wake up.
2. The writer thread takes what is queued (whole flushes, up to about ``batch_limit`` writes),
   opens the transaction and calls ``run(conn, batch)``, which does the work and sets each
   write's ``result`` or ``error``.
3. Before it COMMITs, it calls ``before_commit(batch)`` (in the writer thread): that callback
   may hand results to the callers' loops (:func:`call_on_loops`) to work on while the commit's
   write and fsync go on; an error found there goes to the write's ``late_error``. Once the
   COMMIT has returned, ``after_commit(len(batch))`` runs and the futures are resolved on their
   loops. No caller gets an answer before its write is committed: if the COMMIT fails, every
   caller of the batch gets the storage error.

Every :class:`sqlite3.Error` of a batch becomes :class:`~volact.core.errors.StorageError` with a
plain message, for every write of the batch (rolled back whole); any other exception out of
``run`` is a bug, and fails its batch with ``InternalError`` while the writer goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from volact.core.errors import InternalError, StorageError
from volact.sql.errors import sqlite_storage_error

T = TypeVar("T")
log = logging.getLogger("volact.store")

BUSY_TIMEOUT_MS = 10_000
DEFAULT_BATCH_LIMIT = 512

_STOP = object()


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) that waits for locks."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


class Queued:
    """One queued write: the caller's loop and future, and what came of it.

    ``late_error`` is an error found on the caller's loop while the batch commits (by what
    ``before_commit`` handed there). It is kept apart from ``error`` because the two are set by
    different threads at the same time.
    """

    __slots__ = ("error", "future", "late_error", "loop", "result")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None
        self.late_error: BaseException | None = None


Run = Callable[[sqlite3.Connection, list[Queued]], None]


class SQLiteWriter:
    """The writer thread of one SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        setup: Callable[[sqlite3.Connection], None],
        run: Run,
        before_commit: Callable[[list[Queued]], None] | None = None,
        after_commit: Callable[[int], None] | None = None,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        name: str = "volact-sqlite-writer",
    ) -> None:
        self.path = path
        self.batch_limit = batch_limit
        self._setup = setup
        self._run = run
        self._before_commit = before_commit
        self._after_commit = after_commit
        self._name = name
        self._queue: queue.SimpleQueue[list[Queued] | object] = queue.SimpleQueue()
        # Writes made during the current pass of the event loop, queued together at its end.
        # For one thread's loops: every write method is called on the event loop's thread.
        self._pending: list[Queued] = []
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.batches = 0
        """How many transactions the writer committed (or tried to)."""
        self.on_commit: Callable[[float, int], None] | None = None
        """Called in the writer thread after each COMMIT with the transaction's time (BEGIN to
        COMMIT, seconds) and its number of writes (the host's metrics set it)."""

    async def start(self) -> None:
        """Start the thread; it opens its connection and calls ``setup`` (raises what fails,
        an sqlite3 failure as StorageError)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._write_loop, args=(loop, ready), name=self._name, daemon=True
        )
        self._thread.start()
        await ready

    async def stop(self) -> None:
        """Run every queued write, then end the thread."""
        self.flush()
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def enqueue(self, job: Queued) -> None:
        """Add a write to this pass of the event loop's batch (on the loop's thread; several
        loops one after another, as tests use, are fine)."""
        if self._pending_loop is not job.loop:
            self.flush()  # another loop's writes go first, as they came
            self._pending_loop = job.loop
            job.loop.call_soon(self.flush)
        self._pending.append(job)

    def flush(self) -> None:
        """Hand the writes of this pass of the event loop to the writer, in the order made."""
        pending, self._pending = self._pending, []
        self._pending_loop = None
        if pending:
            self._queue.put(pending)

    # --- the writer thread ----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL, not NORMAL: a WAL commit with NORMAL survives a crash of the process but
            # can be lost to a power cut; an answered write must not be.
            conn.execute("PRAGMA synchronous = FULL")
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _write_loop(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._open()
        except sqlite3.Error as exc:
            error = sqlite_storage_error(exc, self.path)
            error.__cause__ = exc
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
                batch: list[Queued] = first
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
            # A write queued after stop() must not wait forever.
            self._fail_queued()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Queued]) -> None:
        self.batches += 1
        on_commit = self.on_commit
        started = time.perf_counter() if on_commit is not None else 0.0
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._run(conn, batch)
            if self._before_commit is not None:
                self._before_commit(batch)
            conn.execute("COMMIT")
            if on_commit is not None:
                on_commit(time.perf_counter() - started, len(batch))
            if self._after_commit is not None:
                self._after_commit(len(batch))
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            for job in batch:
                job.result = None
                job.error = sqlite_storage_error(exc, self.path)
                job.error.__cause__ = exc
        call_on_loops(_resolve, batch, _loop_of)

    def _abandon(self, conn: sqlite3.Connection, batch: list[Queued], exc: Exception) -> None:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        log.error("the store's writer failed on a batch", exc_info=exc)
        for job in batch:
            job.result = None
            job.error = InternalError(f"the store's writer failed: {type(exc).__name__}")
            job.error.__cause__ = exc
        call_on_loops(_resolve, batch, _loop_of)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, list):
                for job in item:
                    job.error = StorageError("the store was closed before this write ran")
                call_on_loops(_resolve, item, _loop_of)


def _loop_of(job: Queued) -> asyncio.AbstractEventLoop:
    return job.loop


def _resolve(jobs: list[Queued]) -> None:
    """Runs on the caller's event loop once the batch is committed (or failed): hand each
    caller its result or error."""
    for job in jobs:
        if job.future.done():  # the caller was cancelled; the write stands regardless
            continue
        error = job.error or job.late_error
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(job.result)


def _succeed(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def call_on_loops(
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
