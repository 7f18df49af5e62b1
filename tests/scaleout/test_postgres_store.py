"""What only the PostgreSQL store has: several stores (as several hosts) on one database,
batched decisions, migrations racing, statistics shards, failures of the database itself.

The Store contract itself runs on PostgreSQL in tests/store (the ``postgres`` param)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from tests.ports import free_port
from tests.store.helpers import CERTIFICATE, CONTEXT, DAY, GROUP, T0, activate, cmid, request
from volact.authority.store import VendorStore
from volact.core.errors import BadRequest, NotFound, StorageError, UnsupportedVersion
from volact.core.host_machine import Decision, GroupView, Outcome, decide
from volact.core.protocol import ActivationRequest
from volact.sql import migrations as schema
from volact.sql.locks import lock_key
from volact.store import MemoryStore, Store, open_store
from volact.store.base import count_limit_for
from volact.store.postgres import STATISTIC_SHARDS, PostgresStore
from volact.store.postgres_queries import READ_BATCH

from .postgres import fresh_schema, schema_url, server_address, via_port
from .proxy import TCPProxy

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]
SQL = psycopg.Connection[tuple[Any, ...]]
OTHER = "other-2026"  # threshold 1 in the helpers' certificate


def schema_of(url: str) -> str:
    return url.split("search_path%3D", 1)[1].split("&", 1)[0]


def one_line(error: BaseException) -> str:
    assert isinstance(error, StorageError)
    assert "\n" not in error.message and "Traceback" not in error.message
    return error.message


async def decide_on(
    store: Store,
    req: ActivationRequest,
    now: int,
    group: str,
    count_limit: int | None,
) -> Decision:
    """The host's activation with the real core, with the count cap given (None: exact)."""

    def decision_for(view: GroupView) -> Decision:
        return decide(req, group, view, CONTEXT, now)

    return await store.activate(group, req.cmid, now, decision_for, count_limit=count_limit)


# --- several stores, one count ------------------------------------------------------------------


async def test_two_stores_decide_one_after_the_other_in_each_group(make_pg: MakeStore) -> None:
    # Two stores are two hosts: separate pools, writers and transactions on one database.
    hosts = [make_pg(), make_pg()]
    await asyncio.gather(*(host.open() for host in hosts))
    decisions = await asyncio.gather(
        *(activate(hosts[n % 2], request(n)) for n in range(240)),
    )
    # Each newcomer saw every earlier decision, whichever host made it: the counts the
    # decisions report are 1, 2, … once each (up to the cap of 2 x threshold, then 11).
    assert Counter(d.count for d in decisions) == {**{k: 1 for k in range(1, 11)}, 11: 230}
    below = [d for d in decisions if d.outcome is Outcome.BELOW_THRESHOLD]
    assert sorted(d.count for d in below) == [1, 2, 3, 4]
    assert all(d.count >= 5 for d in decisions if d.outcome is Outcome.ACTIVATED)
    assert all(host.batches < 120 for host in hosts)  # both hosts batched their requests
    for host in hosts:
        assert await host.counts(T0) == {GROUP: 240}
        assert (await host.stats()).total == 240
        assert len(await host.events(limit=1000)) == 240


async def test_the_same_cmid_at_two_stores_at_once_is_one_row(
    make_pg: MakeStore, sql: SQL, pg_url: str
) -> None:
    hosts = [make_pg(), make_pg()]
    await asyncio.gather(*(host.open() for host in hosts))
    decisions = await asyncio.gather(
        *(activate(host, request(n)) for n in range(80) for host in hosts)
    )
    assert len(decisions) == 160
    rows = await hosts[0].clients(limit=1000)
    assert sorted(row.cmid for row in rows) == sorted(cmid(n) for n in range(80))
    duplicates = sql.execute(
        f'SELECT cmid, group_id, COUNT(*) FROM "{schema_of(pg_url)}".clients '
        "GROUP BY cmid, group_id HAVING COUNT(*) > 1"
    ).fetchall()
    assert duplicates == []
    assert await hosts[1].counts(T0) == {GROUP: 80}
    assert (await hosts[1].stats()).total == 160


async def test_statistics_are_sharded_rows_summed_on_read(
    make_pg: MakeStore, sql: SQL, pg_url: str
) -> None:
    hosts = [make_pg(), make_pg()]
    await asyncio.gather(*(host.open() for host in hosts))
    await asyncio.gather(*(activate(hosts[n % 2], request(n)) for n in range(20)))
    names = [
        row[0]
        for row in sql.execute(f'SELECT name FROM "{schema_of(pg_url)}".statistics').fetchall()
    ]
    # No single hot row: every counter is kept per connection (backend PID modulo the shards).
    shards = {int(name.rsplit("@", 1)[1]) for name in names}
    assert all("@" in name for name in names) and shards <= set(range(STATISTIC_SHARDS))
    stats = await hosts[0].stats()
    assert stats.total == 20 and stats.by_outcome == {"activated": 16, "below_threshold": 4}


# --- batching gives the views one request at a time would -------------------------------------


@pytest.mark.parametrize("seed", range(4))
async def test_batched_decisions_equal_one_request_at_a_time(make_pg: MakeStore, seed: int) -> None:
    """Random batches (repeated CMIDs, cloned images, times moving both ways across the count
    window, blocks between batches, capped and exact counts, two groups) decided by the
    PostgreSQL store in one transaction each, and by the memory store one request at a time:
    every decision and everything stored is the same."""
    rng = random.Random(seed)
    store = make_pg()
    await store.open()
    reference = MemoryStore()
    times = [T0, T0 + 60, T0 - 3600, T0 + 29 * DAY, T0 + 31 * DAY, T0 + 62 * DAY]
    for _ in range(8):
        if rng.random() < 0.3:
            target = cmid(rng.randrange(12))
            action = rng.choice(["block", "unblock"])
            results: list[object] = []
            for each in (store, reference):
                try:
                    results.append(await getattr(each, action)(target, T0))
                except NotFound:
                    results.append("not found")
            assert results[0] == results[1]
        batch = []
        for _ in range(rng.randrange(1, 24)):
            group = rng.choice([GROUP, GROUP, OTHER])
            now = rng.choice(times)
            req = request(
                rng.randrange(12),
                now,
                fingerprint=rng.choice(["a" * 16, "b" * 16]),
                group=group,
                product="writer-2026" if group == GROUP else "calc-2026",
            )
            limit = rng.choice([None, count_limit_for(CERTIFICATE.groups[group].threshold)])
            batch.append((req, now, group, limit))
        batches_before = store.batches
        got = await asyncio.gather(*(decide_on(store, *item) for item in batch))
        assert store.batches == batches_before + 1  # the whole batch in one transaction
        expected = [await decide_on(reference, *item) for item in batch]
        assert got == expected
    last = max(times)
    assert await store.clients(limit=1000) == await reference.clients(limit=1000)
    for now in times:
        assert await store.counts(now) == await reference.counts(now)
    assert await store.stats() == await reference.stats()
    stored = [(e.kind, e.at, e.cmid, e.group, e.details) for e in await store.events(limit=1000)]
    kept = [(e.kind, e.at, e.cmid, e.group, e.details) for e in await reference.events(limit=1000)]
    assert stored == kept and last


async def test_a_request_whose_data_fails_fails_alone(make_pg: MakeStore) -> None:
    store = make_pg()
    await store.open()

    def too_long_state(n: int) -> Callable[[GroupView], Decision]:
        def decision_for(view: GroupView) -> Decision:
            made = decide(request(n), GROUP, view, CONTEXT, T0)
            assert made.write is not None
            return replace(made, write=replace(made.write, state="x" * 40))  # VARCHAR(32)

        return decision_for

    lone_surrogate = replace(request(3), machine="pc-\ud800")  # text PostgreSQL cannot hold
    results = await asyncio.gather(
        activate(store, request(0)),
        store.activate(GROUP, cmid(1), T0, too_long_state(1), count_limit=10),
        activate(store, request(2)),
        activate(store, lone_surrogate),
        activate(store, request(4)),
        return_exceptions=True,
    )
    assert isinstance(results[1], StorageError) and "too long" in one_line(results[1])
    assert isinstance(results[3], UnicodeEncodeError)
    fine = [results[0], results[2], results[4]]
    assert all(isinstance(d, Decision) for d in fine)
    assert sorted(row.cmid for row in await store.clients()) == [cmid(0), cmid(2), cmid(4)]
    assert (await store.stats()).total == 3


# --- migrations -------------------------------------------------------------------------------


async def test_hosts_starting_at_once_migrate_once(
    make_pg: MakeStore, sql: SQL, pg_url: str
) -> None:
    stores = [make_pg() for _ in range(4)]
    opened = await asyncio.gather(*(store.open() for store in stores), return_exceptions=True)
    assert opened == [None] * 4
    versions = sql.execute(
        f'SELECT version, name FROM "{schema_of(pg_url)}".schema_version ORDER BY version'
    ).fetchall()
    assert versions == [(m.version, m.name) for m in schema.migrations("host", "postgresql")]
    await activate(stores[3], request(0))
    assert await stores[0].counts(T0) == {GROUP: 1}


async def test_a_database_from_a_newer_volact_is_refused(
    make_pg: MakeStore, sql: SQL, pg_url: str
) -> None:
    first = make_pg()
    await first.open()
    await first.close()
    sql.execute(
        f"INSERT INTO \"{schema_of(pg_url)}\".schema_version (version, name) VALUES (99, 'future')"
    )
    with pytest.raises(UnsupportedVersion, match="upgrade volact"):
        await make_pg().open()


async def test_a_search_path_without_a_schema_is_a_plain_error(make_pg: MakeStore) -> None:
    store = make_pg(schema_url("volact_no_such_schema"))
    with pytest.raises(StorageError) as caught:
        await store.open()
    assert "names no schema that exists" in one_line(caught.value)


# --- URLs -------------------------------------------------------------------------------------


def test_postgres_urls_open_a_postgres_store_that_hides_the_password() -> None:
    for url, shown in [
        (
            "postgresql://volact:s3cret@db.example:5432/volact",
            "postgresql://volact:***@db.example:5432/volact",
        ),
        ("postgres://volact@db.example/volact", "postgres://volact@db.example/volact"),
        (
            "postgresql://db.example/volact?user=volact&password=s3cret",
            "postgresql://db.example/volact?user=volact&password=***",
        ),
    ]:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert store.url == shown


def test_an_unreadable_postgres_url_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="cannot be read") as caught:
        open_store("postgresql://volact:s3cret@db.example/volact?no_such_option=1")
    assert "s3cret" not in caught.value.message


def test_a_url_that_cannot_be_parsed_never_shows_its_password() -> None:
    """libpq repeats the whole URL in its message; the host and the vendor store hide it."""
    url = "postgresql://postgres:SECRETPW@[::1:18499/h"
    with pytest.raises(BadRequest, match="cannot be read") as caught:
        open_store(url)
    assert "SECRETPW" not in caught.value.message
    with pytest.raises(BadRequest, match="cannot be read") as vendor:
        VendorStore(url)
    assert "SECRETPW" not in vendor.value.message


def test_lock_keys_are_per_schema_and_group() -> None:
    keys = {
        lock_key("volact", space, name) for space in ("a", "b") for name in ("group:x", "group:y")
    }
    assert len(keys) == 4
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert lock_key("volact", "a", "group:x") == lock_key("volact", "a", "group:x")


# --- the database failing ---------------------------------------------------------------------


async def test_an_unreachable_database_is_one_plain_line(make_pg: MakeStore) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    with pytest.raises(StorageError) as caught:
        await make_pg(url).open()
    message = one_line(caught.value)
    assert message.startswith("the database postgresql://postgres:***@127.0.0.1:")
    assert "refused" in message.lower() and "hunter2" not in message


async def test_a_missing_database_is_named(make_pg: MakeStore) -> None:
    host, port = server_address()
    with pytest.raises(StorageError) as caught:
        await make_pg(f"postgresql://postgres@{host}:{port}/volact_no_such_db").open()
    assert 'database "volact_no_such_db" does not exist' in one_line(caught.value)


async def test_killed_connections_are_replaced_without_failing_a_request(
    make_pg: MakeStore, sql: SQL, pg_url: str
) -> None:
    store = make_pg()
    await store.open()
    await activate(store, request(0))
    application = f"volact-{schema_of(pg_url)}"
    killed = sql.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (application,),
    ).fetchall()
    assert killed  # the pool's connections, idle between requests
    decision = await activate(store, request(1))  # retried on a fresh connection
    assert decision.count == 2
    assert len(await store.clients()) == 2


async def test_a_group_locked_by_a_stuck_host_fails_plainly(
    make_pg: MakeStore, sql: SQL, pg_url: str
) -> None:
    store = make_pg(lock_timeout=0.3)
    await store.open()
    # Another "host" holds the group's lock and does nothing with it.
    sql.execute("SELECT pg_advisory_lock(%s)", (store.group_lock(GROUP),))
    try:
        with pytest.raises(StorageError) as caught:
            await activate(store, request(0))
        assert "stayed locked by another host" in one_line(caught.value)
        other = await activate(store, request(1, product="calc-2026", group=OTHER), group=OTHER)
        assert other.outcome is Outcome.ACTIVATED  # other groups are not held up
    finally:
        sql.execute("SELECT pg_advisory_unlock(%s)", (store.group_lock(GROUP),))
    assert (await activate(store, request(0))).count == 1


async def test_a_database_that_goes_away_fails_requests_plainly_then_recovers(
    proxy: TCPProxy, make_pg: MakeStore, pg_url: str
) -> None:
    through_proxy = via_port(pg_url, proxy.port)
    store = make_pg(through_proxy, acquire_timeout=2.0)
    await store.open()
    await activate(store, request(0))

    proxy.cut()
    for attempt in (request(1), request(2)):
        with pytest.raises(StorageError) as caught:
            await activate(store, attempt)
        assert "refused" in one_line(caught.value).lower()
    with pytest.raises(StorageError):
        await store.clients()

    proxy.start()  # the same port: the database is back
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            decision = await activate(store, request(3))
            break
        except StorageError:
            assert loop.time() < deadline, "the store did not reconnect"
            await asyncio.sleep(0.2)
    assert decision.count == 2  # the failed requests left nothing behind
    assert [row.cmid for row in await store.clients()] == [cmid(0), cmid(3)]
    assert (await store.stats()).total == 2


async def test_fresh_schemas_do_not_see_each_other() -> None:
    with fresh_schema() as first, fresh_schema() as second:
        one, two = PostgresStore(first), PostgresStore(second)
        await one.open()
        await two.open()
        try:
            await activate(one, request(0))
            assert await two.clients() == []
        finally:
            await one.close()
            await two.close()


# --- query plans ------------------------------------------------------------------------------


def test_the_batch_read_walks_the_indexes(pg_url: str, sql: SQL) -> None:
    """The count of a small group beside a big one, and the client lookups, use the indexes
    (in the plan a prepared statement gets), so a request costs the same with many clients.
    Without ``ORDER BY last_seen DESC`` this plan is a sequential scan of the whole table."""
    schema_name = schema_of(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in schema.migrations("host", "postgresql")[0].statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO clients SELECT md5(i::text)::uuid::text, 'big', 'p', 'f', 'm', 's', 0, "
            "%s, %s + i %% 1000, NULL FROM generate_series(1, 40000) AS i",
            (T0, T0),
        )
        # The statistics know one group only, as when a small group starts after the last
        # ANALYZE: the planner then guesses that most rows match any group.
        conn.execute("ANALYZE clients")
        conn.execute(
            "INSERT INTO clients SELECT md5((-i)::text)::uuid::text, 'small', 'p', 'f', 'm', 's', "
            "0, %s, %s, NULL FROM generate_series(1, 3) AS i",
            (T0, T0),
        )
        numbered = READ_BATCH
        for number in range(1, 6):
            numbered = numbered.replace("%b", f"${number}", 1)
        conn.execute(f"PREPARE read_batch AS {numbered}")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        explain = psycopg.ClientCursor(conn)  # EXECUTE's arguments are bound as literals
        explain.execute(
            "EXPLAIN EXECUTE read_batch(%s, %s, %s, %s, %s)",
            ([cmid(1)], ["small"], ["small", "big"], [T0 - 60] * 2, [10, 10]),
        )
        plan = "\n".join(str(row[0]) for row in explain.fetchall())
    assert "Seq Scan on clients" not in plan, plan
    assert "clients_count" in plan and "clients_pkey" in plan, plan
    assert sql.execute(f'SELECT COUNT(*) FROM "{schema_name}".clients').fetchone() == (40003,)
