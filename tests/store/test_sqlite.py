"""What only the SQLite store has: migrations, pragmas, query plans, storage failures."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from volact.core.errors import BadRequest, StorageError, UnsupportedVersion
from volact.core.host_machine import Decision, Event, GroupView, decide
from volact.sql import migrations as schema
from volact.store import MemoryStore, SQLiteStore, open_store, redact_url
from volact.store.sqlite_queries import COUNT_LIMITED, SELECT_CLIENT

from .helpers import CONTEXT, GROUP, T0, activate, cmid, request


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}


async def test_migrations_apply_once_and_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "host.db"
    for _ in range(3):
        store = SQLiteStore(path)
        await store.open()
        await store.record_event(Event("note", T0))
        await store.close()
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
        assert versions == [(m.version, m.name) for m in schema.migrations("host", "sqlite")]
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (3,)
    assert {"clients", "events", "statistics", "clients_count", "events_at"} <= tables(path)


def test_migrations_fill_in_dialect_tokens() -> None:
    for dialect in ("sqlite", "postgresql"):
        text = " ".join(s for m in schema.migrations("host", dialect) for s in m.statements)
        assert "{{" not in text and "--" not in text
    assert "INTEGER PRIMARY KEY" in schema.migrations("host", "sqlite")[0].statements[2]
    assert "IDENTITY" in schema.migrations("host", "postgresql")[0].statements[2]
    assert schema.latest_version() == len(schema.migrations("host", "sqlite"))


async def test_a_database_from_a_newer_volact_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "host.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version, name) VALUES (99, 'future')")
    with pytest.raises(UnsupportedVersion, match="upgrade volact"):
        await SQLiteStore(path).open()


async def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    try:
        modes = await store._submit(
            lambda conn, _: (
                conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA synchronous").fetchone()[0],
            )
        )
        assert modes == ("wal", 2)  # 2 = FULL
    finally:
        await store.close()


def test_per_request_queries_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "host.db"
    asyncio.run(_open_and_close(path))
    with sqlite3.connect(path) as conn:
        count_plan = " ".join(
            str(row[-1])
            for row in conn.execute(f"EXPLAIN QUERY PLAN {COUNT_LIMITED}", (GROUP, T0, 10))
        )
        assert "INDEX clients_count" in count_plan
        client_plan = " ".join(
            str(row[-1])
            for row in conn.execute(f"EXPLAIN QUERY PLAN {SELECT_CLIENT}", (cmid(1), GROUP))
        )
        assert "sqlite_autoindex_clients_1" in client_plan or "PRIMARY KEY" in client_plan


async def _open_and_close(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.close()


async def test_a_missing_directory_is_a_plain_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nowhere" / "host.db")
    with pytest.raises(StorageError) as caught:
        await store.open()
    assert "does not exist" in caught.value.message
    assert str(tmp_path / "nowhere") in caught.value.message


async def test_a_full_disk_fails_the_batch_whole_and_the_store_goes_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    try:
        await activate(store, request(0))
        # Cap the file at its current size: the next page it needs is "disk full".
        await store._submit(lambda conn, _: conn.execute("PRAGMA max_page_count = 1"))
        filler = "x" * 200_000
        with pytest.raises(StorageError, match="disk is full"):
            await store.record_event(Event("note", T0, details={"filler": filler}))
        assert len(await store.events()) == 1  # only the first request's event
        assert (await store.stats()).total == 1
        await store._submit(lambda conn, _: conn.execute("PRAGMA max_page_count = 1073741823"))
        await activate(store, request(1))
        assert await store.counts(T0) == {GROUP: 2}
    finally:
        await store.close()


async def test_a_job_that_fails_after_writing_is_undone_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "host.db")
    await store.open()

    def half_done(conn: sqlite3.Connection, counters: Counter[str]) -> None:
        conn.execute(
            "INSERT INTO events (at, kind, cmid, group_id, details) "
            "VALUES (1, 'x', NULL, NULL, '{}')"
        )
        counters["total"] += 100
        raise RuntimeError("bug after a write")

    try:
        results = await asyncio.gather(
            activate(store, request(0)),
            store._submit(half_done),
            activate(store, request(1)),
            return_exceptions=True,
        )
        assert isinstance(results[1], RuntimeError)
        assert await store.counts(T0) == {GROUP: 2}
        assert [e.kind for e in await store.events()] == ["activation_request"] * 2
        assert (await store.stats()).total == 2
    finally:
        await store.close()


async def test_a_second_store_on_the_same_file_reads_while_the_first_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "host.db"
    server, admin = SQLiteStore(path), SQLiteStore(path)
    await server.open()
    await admin.open()
    try:
        await activate(server, request(0))
        assert [row.cmid for row in await admin.clients()] == [cmid(0)]
        await admin.block(cmid(0), T0 + 1)  # an admin write from "another process"
        decision = await activate(server, request(0, T0 + 2), T0 + 2)
        assert decision.code == "client_blocked"
    finally:
        await admin.close()
        await server.close()


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StorageError, match="not open"):
        await store.stats()
    with pytest.raises(StorageError, match="not open"):
        await store.record_event(Event("note", T0))


def test_open_store_picks_the_store_from_the_url(tmp_path: Path) -> None:
    sqlite_store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    assert isinstance(sqlite_store, SQLiteStore)
    assert sqlite_store.path == str(tmp_path / "h.db")
    assert open_store("sqlite:///relative/h.db").path == "relative/h.db"  # type: ignore[attr-defined]
    assert isinstance(open_store("memory://"), MemoryStore)
    for bad in ("mysql://u:secret@db/x", "h.db", "sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(BadRequest) as caught:
            open_store(bad)
        assert "secret" not in caught.value.message


def test_redact_url_hides_passwords() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/volact") == (
        "postgresql://app:***@db:5432/volact"
    )
    assert redact_url("sqlite:////var/lib/volact/host/host.db").endswith("host.db")


async def test_a_writer_bug_fails_its_batch_and_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from volact.core.errors import InternalError

    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    try:
        original = store._writer._run_batch

        def broken(conn: sqlite3.Connection, batch: list[object]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            raise KeyError("bug")

        monkeypatch.setattr(store._writer, "_run_batch", broken)
        with pytest.raises(InternalError):
            await activate(store, request(0))
        monkeypatch.setattr(store._writer, "_run_batch", original)
        await activate(store, request(1))
        assert [row.cmid for row in await store.clients()] == [cmid(1)]
    finally:
        await store.close()


async def test_seal_runs_on_the_event_loop_and_the_answer_waits_for_the_commit(
    tmp_path: Path,
) -> None:
    """The host signs tickets in ``seal``: with SQLite that is on the caller's event loop (not
    the writer thread), and by the time ``activate`` returns, its row is committed (readable
    from another connection)."""
    path = tmp_path / "host.db"
    store = SQLiteStore(path)
    seen: list[str] = []

    def seal(decision: Decision) -> None:
        seen.append(threading.current_thread().name)

    def decision_for(view: GroupView) -> Decision:
        return decide(request(1), GROUP, view, CONTEXT, T0)

    await store.open()
    try:
        await store.activate(GROUP, cmid(1), T0, decision_for, seal=seal)
        with contextlib.closing(sqlite3.connect(path)) as other:
            (rows,) = other.execute("SELECT COUNT(*) FROM clients").fetchone()
    finally:
        await store.close()
    assert rows == 1
    assert seen == [threading.current_thread().name]
    assert seen[0] != "volact-sqlite-writer"


class _CommitFails(sqlite3.Connection):
    """A real SQLite connection whose COMMIT fails while ``failing`` is set (an injected I/O
    error at the last moment, after the batch's tickets were handed out to be sealed)."""

    failing = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and _CommitFails.failing:
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


async def test_a_failed_commit_answers_nothing_it_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite seals while the batch commits. If the COMMIT then fails, every caller of the batch
    gets the storage error, not what was sealed, and nothing of the batch is stored."""
    from volact.sql import sqlite_writer

    def connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=_CommitFails
        )
        conn.execute(f"PRAGMA busy_timeout = {sqlite_writer.BUSY_TIMEOUT_MS}")
        return conn

    monkeypatch.setattr(sqlite_writer, "connect", connect)
    sealed: list[str] = []

    def seal(decision: Decision) -> None:
        assert decision.write is not None
        sealed.append(decision.write.cmid)

    def decision_for(n: int) -> Callable[[GroupView], Decision]:
        return lambda view: decide(request(n), GROUP, view, CONTEXT, T0)

    store = SQLiteStore(tmp_path / "host.db")
    await store.open()
    monkeypatch.setattr(_CommitFails, "failing", True)
    try:
        results = await asyncio.gather(
            *(store.activate(GROUP, cmid(n), T0, decision_for(n), seal=seal) for n in range(3)),
            return_exceptions=True,
        )
        assert sorted(sealed) == sorted(cmid(n) for n in range(3))  # sealed, never answered
        assert all(isinstance(result, StorageError) for result in results), results
        assert await store.clients() == []
        assert (await store.stats()).total == 0
        monkeypatch.setattr(_CommitFails, "failing", False)
        decision = await store.activate(GROUP, cmid(9), T0, decision_for(9), seal=seal)
        assert decision.count == 1
        assert [row.cmid for row in await store.clients()] == [cmid(9)]
    finally:
        await store.close()


@pytest.mark.parametrize("clients", [150, 5])
async def test_the_checkpointer_copies_commits_into_the_database_file(
    tmp_path: Path, clients: int
) -> None:
    """The background checkpointer copies committed pages from the WAL into host.db (SQLite
    alone would wait for 1,000 pages): a copy of host.db without its WAL holds the clients.
    150 writes ask for a checkpoint at once; 5 are too few, and are copied once the store has
    been idle for a while."""
    path = tmp_path / "host.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        await asyncio.gather(*(activate(store, request(n)) for n in range(clients)))
        assert path.with_name("host.db-wal").stat().st_size > 0
        found = None
        for attempt in range(500):  # a bounded wait for a background thread, not a timing test
            await asyncio.sleep(0.02)
            copy = tmp_path / f"copy-{attempt}.db"
            shutil.copyfile(path, copy)
            try:
                with contextlib.closing(sqlite3.connect(copy)) as conn:
                    found = conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0]
            except sqlite3.DatabaseError:  # caught mid-copy, or before the first checkpoint
                continue
            # The count of checkpoints goes up just after the copy is visible: wait for both.
            if found == clients and store.checkpoints >= 1:
                break
        assert found == clients
        assert store.checkpoints >= 1
    finally:
        await store.close()


async def test_no_checkpointer_when_background_checkpoints_are_off(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "host.db", background_checkpoints=False)
    await store.open()
    try:
        await activate(store, request(1))
        assert store._checkpointer is None
        assert {t.name for t in threading.enumerate()}.isdisjoint({"volact-sqlite-checkpoint"})
    finally:
        await store.close()
    assert store.checkpoints == 0
