"""A background WAL checkpointer for a SQLite file that one writer commits to.

SQLite checkpoints in the commit that takes the WAL past 1,000 pages: it copies them into the
database file and syncs it, and the batch of that commit (and every write queued behind it)
waits meanwhile. Here a PASSIVE checkpoint runs on a connection of its own, beside the writer,
which it never blocks. SQLite's own checkpoint still runs at 1,000 pages (it alone can start the
WAL over while writes go on), but it then finds nearly every page copied already.

Each checkpoint starts just after a commit (the writer calls :meth:`Checkpointer.committed`),
while the writer prepares its next batch, and copies a little: the writes since the last one,
at least ``after_writes`` of them. Writes that came while a checkpoint ran, or too few to ask
for one, are copied by the next one, or after ``idle_interval`` seconds if nothing more comes.
A failure is logged and tried again later; nothing is lost (the WAL still holds every commit).
Why these numbers: docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("volact.store")

CHECKPOINT_AFTER_WRITES = 128
IDLE_CHECKPOINT_INTERVAL = 1.0


class Checkpointer:
    """A thread that runs ``PRAGMA wal_checkpoint(PASSIVE)`` after commits (see the module
    docstring)."""

    def __init__(
        self,
        path: str,
        connect: Callable[[str], sqlite3.Connection],
        *,
        after_writes: int = CHECKPOINT_AFTER_WRITES,
        idle_interval: float = IDLE_CHECKPOINT_INTERVAL,
        name: str = "volact-sqlite-checkpoint",
    ) -> None:
        self.path = path
        self.after_writes = after_writes
        self.idle_interval = idle_interval
        self._connect = connect
        self._name = name
        self._stop = threading.Event()
        # Set by the writer at the end of a commit when a checkpoint is due.
        self._due = threading.Event()
        self._uncheckpointed = 0  # writes committed since the last checkpoint was asked for
        self._commits = 0
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        """How many checkpoints ran (a diagnostic)."""

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (blocks until it has)."""
        self._stop.set()
        self._due.set()  # wakes the thread up to stop
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def committed(self, writes: int) -> None:
        """Called by the writer thread once a commit of ``writes`` writes has returned."""
        self._commits += 1
        self._uncheckpointed += writes
        if self._uncheckpointed >= self.after_writes:
            self._uncheckpointed = 0
            self._due.set()

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        seen = -1
        try:
            while not self._stop.is_set():
                signalled = self._due.wait(self.idle_interval)
                if self._stop.is_set():
                    break
                if not signalled and self._commits == seen:
                    continue
                seen = self._commits
                try:
                    if conn is None:
                        conn = self._connect(self.path)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    log.warning("a WAL checkpoint failed (tried again later): %s", exc)
                # Cleared only now, so that the next checkpoint starts at a commit's end.
                self._due.clear()
        finally:
            if conn is not None:
                conn.close()
