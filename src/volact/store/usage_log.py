"""The usage log in the host's database (SQLite or PostgreSQL): the hash chain of
count-relevant events, appended by scanning the clients table (issue 20; the rules are
:mod:`volact.core.usage`).

:meth:`UsageLog.record` compares every client row with what the chain has said about it so far
(``usage_state``) — reading only the clients seen since the last recording, those whose
block changed and those whose window ended, each through an index — appends the events that
happened since (``seen``, ``renewed``, ``expired``,
``blocked``, ``unblocked``, each at the time it happened), and signs the new head with the
host's certified key, all in one transaction under the database's write lock (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL an advisory lock), so that several hosts sharing one database append one
chain and never the same event twice. :meth:`UsageLog.report_range` reads a run of events and
the heads that sign it.

It uses its own synchronous connection next to the host store (a scan every few minutes and an
export now and then; the hot path never waits for it), and the same migrations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from volact.core import usage
from volact.core.errors import ConfigurationError, StorageError, UnsupportedVersion
from volact.core.policy import CLOCK_SKEW_TOLERANCE, COUNT_WINDOW
from volact.sql import migrations
from volact.sql.errors import driver_errors, one_line
from volact.sql.locks import lock_key
from volact.sql.urls import POSTGRES_SCHEMES, redact_url, sqlite_url_path

BUSY_TIMEOUT_SECONDS = 30.0
_ORDER = {kind: position for position, kind in enumerate(usage.KINDS)}

Signer = Callable[[usage.Head], str]


@dataclass(frozen=True)
class Run:
    """A contiguous run of the chain: events (with hashes), the hash before, the heads."""

    prev_hash: str
    events: list[usage.UsageEvent]
    hashes: list[str]
    heads: list[str]
    certificates: list[str]


def _too_new(version: int, latest: int) -> UnsupportedVersion:
    return UnsupportedVersion(
        f"the host database has schema version {version}, newer than this volact knows "
        f"({latest}); upgrade volact"
    )


class UsageLog:
    """The usage log of one host database URL (``sqlite:///…`` or ``postgresql://…``)."""

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        self.postgres = url.startswith(POSTGRES_SCHEMES)
        try:
            if self.postgres:
                import psycopg

                self._conn: Any = psycopg.connect(url, autocommit=True)
                row = self._conn.execute("SELECT current_schema()").fetchone()
                namespace = str(row[0]) if row and row[0] else "public"
                migrations.migrate_postgres(
                    self._conn, "host", _too_new, lock_key("volact", namespace, "migrations")
                )
                self._lock = lock_key("volact", namespace, "usage-log")
            else:
                path = sqlite_url_path(url)
                if not path:
                    raise ConfigurationError(
                        f"the usage log needs an SQLite or PostgreSQL database, not {url!r}"
                    )
                self._conn = sqlite3.connect(
                    path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
                )
                self._conn.execute("PRAGMA journal_mode=WAL")
                migrations.migrate_sqlite(self._conn, "host", _too_new)
        except driver_errors() as exc:
            raise StorageError(f"the usage log of {self.url} failed: {one_line(str(exc))}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> UsageLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(self._sql(sql), params).fetchall())

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._conn.execute(self._sql(sql), params)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            if self.postgres:
                self._conn.execute("BEGIN")
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock,))
            else:
                self._conn.execute("BEGIN IMMEDIATE")
            yield
            self._conn.execute("COMMIT")
        except BaseException as exc:
            try:
                self._conn.execute("ROLLBACK")
            except driver_errors():
                pass
            if isinstance(exc, driver_errors()):
                raise StorageError(
                    f"the usage log of {self.url} failed: {one_line(str(exc))}"
                ) from exc
            raise

    # --- appending ----------------------------------------------------------------------

    # The clients read by a recording: those seen since the watermark (less the clock skew two
    # hosts of one database may have), those whose block changed, and those whose window ended.
    # Each read uses an index, so a recording costs what changed, not the number of clients.
    _GROUPS = (
        "WITH RECURSIVE g(x) AS (SELECT MIN(group_id) FROM clients UNION ALL "
        "SELECT (SELECT MIN(group_id) FROM clients WHERE group_id > x) FROM g "
        "WHERE x IS NOT NULL) SELECT x FROM g WHERE x IS NOT NULL"
    )
    _CLIENT = "SELECT cmid, group_id, blocked, first_seen, last_seen FROM clients"

    def _candidates(self, now: int) -> dict[tuple[str, str], tuple[int, int, int]]:
        """(cmid, group) → (blocked, first_seen, last_seen) of every client to look at."""
        watermark = self._rows("SELECT value FROM usage_meta WHERE name = 'watermark'")
        since = int(watermark[0][0]) - CLOCK_SKEW_TOLERANCE if watermark else -(2**62)
        found: dict[tuple[str, str], tuple[int, int, int]] = {}

        def take(rows: list[tuple[Any, ...]]) -> None:
            for cmid, group, blocked, first_seen, last_seen in rows:
                found[(cmid, group)] = (int(blocked), int(first_seen), int(last_seen))

        blocked_now: set[tuple[str, str]] = set()
        for (group,) in self._rows(self._GROUPS):
            for blocked in (0, 1):
                take(
                    self._rows(
                        f"{self._CLIENT} WHERE group_id = ? AND blocked = ? AND last_seen >= ?",
                        (group, blocked, since),
                    )
                )
            rows = self._rows(f"{self._CLIENT} WHERE group_id = ? AND blocked = 1", (group,))
            take(rows)
            blocked_now.update((row[0], row[1]) for row in rows)
        blocked_before = {
            (row[0], row[1])
            for row in self._rows("SELECT cmid, group_id FROM usage_state WHERE blocked = 1")
        }
        expiring = {
            (row[0], row[1])
            for row in self._rows(
                "SELECT cmid, group_id FROM usage_state WHERE counted = 1 AND last_seen <= ?",
                (now - COUNT_WINDOW,),
            )
        }
        for cmid, group in (blocked_before - blocked_now) | expiring:
            if (cmid, group) not in found:
                take(self._rows(f"{self._CLIENT} WHERE cmid = ? AND group_id = ?", (cmid, group)))
        return found

    def _changes(
        self, now: int
    ) -> tuple[list[tuple[int, str, str, str]], dict[tuple[str, str], tuple[int, int, int]], int]:
        """The events since the last recording (at, kind, group, cmid), the new state of each
        client they concern, and the new watermark."""
        events: list[tuple[int, str, str, str]] = []
        states: dict[tuple[str, str], tuple[int, int, int]] = {}
        watermark = 0
        for (cmid, group), (blocked, first_seen, last_seen) in self._candidates(now).items():
            watermark = max(watermark, last_seen)
            old_rows = self._rows(
                "SELECT last_seen, blocked, counted FROM usage_state "
                "WHERE cmid = ? AND group_id = ?",
                (cmid, group),
            )
            found: list[tuple[int, str]] = []
            if not old_rows:
                seen, was_blocked, counted = 0, 0, 1
                found.append((first_seen, "seen"))
                if last_seen > first_seen:
                    found.append((last_seen, "renewed"))
            else:
                seen, was_blocked, counted = (int(value) for value in old_rows[0])
                if last_seen > seen:
                    found.append((last_seen, "renewed" if counted else "seen"))
                    counted = 1
            if blocked != was_blocked:
                found.append((now, "blocked" if blocked else "unblocked"))
            if counted and last_seen + COUNT_WINDOW <= now:
                found.append((last_seen + COUNT_WINDOW, "expired"))
                counted = 0
            if found:
                events.extend((at, kind, group, cmid) for at, kind in found)
                states[(cmid, group)] = (last_seen, blocked, counted)
        events.sort(key=lambda item: (item[0], _ORDER[item[1]], item[2], item[3]))
        return events, states, watermark

    def record(
        self, *, now: int, host_id: str, cert_id: str, certificate: str, sign: Signer
    ) -> int:
        """Append the events since the last recording and sign the head; returns how many."""
        with self._locked():
            last = self._rows("SELECT seq, hash FROM usage_events ORDER BY seq DESC LIMIT 1")
            seq, previous = (int(last[0][0]), str(last[0][1])) if last else (0, usage.GENESIS)
            events, states, watermark = self._changes(now)
            for at, kind, group, cmid in events:
                seq += 1
                event = usage.UsageEvent(seq, at, kind, group, cmid, host_id)
                previous = usage.event_hash(previous, event)
                self._run(
                    "INSERT INTO usage_events (seq, at, kind, group_id, cmid, host_id, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, at, kind, group, cmid, host_id, previous),
                )
            for (cmid, group), (last_seen, blocked, counted) in states.items():
                self._run(
                    "INSERT INTO usage_state (cmid, group_id, last_seen, blocked, counted) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cmid, group_id) DO UPDATE SET "
                    "last_seen = excluded.last_seen, blocked = excluded.blocked, "
                    "counted = excluded.counted",
                    (cmid, group, last_seen, blocked, counted),
                )
            self._run(
                "INSERT INTO usage_meta (name, value) VALUES ('watermark', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = "
                "CASE WHEN excluded.value > usage_meta.value THEN excluded.value "
                "ELSE usage_meta.value END",
                (watermark,),
            )
            signed = self._rows("SELECT 1 FROM usage_heads WHERE seq = ?", (seq,))
            if seq and not signed:
                head = usage.Head(seq, previous, now, host_id, cert_id)
                self._run(
                    "INSERT INTO usage_heads (seq, at, host_id, token, certificate) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (seq, now, host_id, sign(head), certificate),
                )
        return len(events)

    # --- reading ------------------------------------------------------------------------

    def report_range(self, start: int, end: int) -> Run:
        """The events signed by heads from ``start`` (exclusive of earlier heads) to ``end``:
        from the event after the last head signed before ``start`` up to the last head signed
        before ``end``. Consecutive ranges (``end`` of one is ``start`` of the next) partition
        the chain, so consecutive reports leave no gap."""
        before = self._rows(
            "SELECT seq FROM usage_heads WHERE at < ? ORDER BY seq DESC LIMIT 1", (start,)
        )
        upto = self._rows(
            "SELECT seq FROM usage_heads WHERE at < ? ORDER BY seq DESC LIMIT 1", (end,)
        )
        first = int(before[0][0]) + 1 if before else 1
        last = int(upto[0][0]) if upto else 0
        prev = self._rows("SELECT hash FROM usage_events WHERE seq = ?", (first - 1,))
        rows = self._rows(
            "SELECT seq, at, kind, group_id, cmid, host_id, hash FROM usage_events "
            "WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first, last),
        )
        heads = self._rows(
            "SELECT token, certificate FROM usage_heads WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first, last),
        )
        return Run(
            prev_hash=str(prev[0][0]) if prev else usage.GENESIS,
            events=[usage.UsageEvent(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows],
            hashes=[str(r[6]) for r in rows],
            heads=[str(h[0]) for h in heads],
            certificates=[str(h[1]) for h in heads],
        )
