"""The SQL of the PostgreSQL store's methods, and the conversions between its rows and records.

The rules (which row a write leaves, what a count is) are not here: the batch model
(:mod:`volact.core.batch`) computes each row, and these statements read and write it. Every
batch reads in one statement and writes in one, however many requests it holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from volact.core.batch import ClientKey, KnownClient
from volact.core.host_machine import Event
from volact.store.base import CLIENT_COLUMNS, CLIENT_UPSERT, ClientSearch

BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"
LOCK_KEYS = "SELECT pg_advisory_xact_lock(key) FROM unnest(%b::bigint[]) AS keys(key)"
# A batch's reads in one statement: the rows of the (cmid, group) pairs it decides on (kind 0,
# ``i`` = the pair's position) and the count of each (group, cutoff, cap) it needs (kind 1).
# A count stops at its cap (LIMIT), so it costs O(threshold) however many clients a group has.
# ORDER BY last_seen DESC makes that a backward walk of the clients_count index: without it,
# the planner (not knowing which group) may prefer a sequential scan that, for a small group
# beside a big one, reads the whole table to find fewer rows than the cap.
# Arrays are bound in binary (%b): the text format escapes every element, which cost more than
# everything else the store does for a request.
READ_BATCH = """
SELECT 0, wanted.i, c.last_seen, c.fingerprint, c.blocked, c.first_seen,
       c.product, c.machine, c.state, c.valid_until
FROM unnest(%b::text[], %b::text[]) WITH ORDINALITY AS wanted(cmid, group_id, i)
JOIN clients AS c ON c.cmid = wanted.cmid AND c.group_id = wanted.group_id
UNION ALL
SELECT 1, asked.i,
       (SELECT COUNT(*) FROM (SELECT 1 FROM clients
                              WHERE group_id = asked.group_id AND blocked = 0
                                AND last_seen >= asked.cutoff
                              ORDER BY last_seen DESC
                              LIMIT asked.cap) AS counted),
       NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM unnest(%b::text[], %b::bigint[], %b::bigint[])
     WITH ORDINALITY AS asked(group_id, cutoff, cap, i)
"""
INSERT_EVENTS = """
INSERT INTO events (at, kind, cmid, group_id, details)
SELECT at, kind, cmid, group_id, details
FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[])
     AS new_events(at, kind, cmid, group_id, details)
"""
# A batch's writes in one statement: client rows, statistics, events (in request order).
# The client rows are the ones the batch model merged (volact.core.batch); a known row keeps
# its blocked and first_seen. ``WHERE true`` keeps ON CONFLICT from being read as a join
# condition of the SELECT.
WRITE_BATCH = f"""
WITH upserted AS (
    INSERT INTO clients (cmid, group_id, product, fingerprint, machine, state, blocked,
                         first_seen, last_seen, valid_until)
    SELECT cmid, group_id, product, fingerprint, machine, state, 0,
           first_seen, last_seen, valid_until
    FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                %b::bigint[], %b::bigint[], %b::bigint[])
         AS writes(cmid, group_id, product, fingerprint, machine, state,
                   first_seen, last_seen, valid_until)
    WHERE true
    {CLIENT_UPSERT}
), bumped AS (
    INSERT INTO statistics (name, value)
    SELECT name, value FROM unnest(%b::text[], %b::bigint[]) AS bumps(name, value)
    WHERE true
    ON CONFLICT (name) DO UPDATE SET value = statistics.value + excluded.value
)
{INSERT_EVENTS}
"""
SHARD_SEPARATOR = "@"


SET_BLOCKED = "UPDATE clients SET blocked = %s WHERE cmid = %s"
GROUPS_OF = 'SELECT group_id FROM clients WHERE cmid = %s ORDER BY group_id COLLATE "C"'
# CMIDs are lower-case ASCII: a range in byte order ("C") is exactly the prefix's CMIDs.
CMIDS_WITH_PREFIX = (
    'SELECT DISTINCT cmid COLLATE "C" AS c FROM clients WHERE cmid COLLATE "C" >= %s '
    'AND cmid COLLATE "C" < %s ORDER BY c LIMIT %s'
)
PRUNE_OLD = "DELETE FROM events WHERE at < %s"
PRUNE_BEYOND = (
    "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET %s)"
)
SELECT_STATISTICS = (
    "SELECT split_part(name, %s, 1) AS counter, SUM(value)::bigint FROM statistics GROUP BY counter"
)
COUNT_GROUPS = (
    "SELECT group_id, COUNT(*) FROM clients WHERE blocked = 0 AND last_seen >= %s "
    'GROUP BY group_id ORDER BY group_id COLLATE "C"'
)


def search_queries(search: ClientSearch) -> tuple[str, str, list[Any]]:
    """How many clients match ``search``, and one page of them, ordered as
    :func:`clients_query` orders them (count SQL, page SQL, the parameters of both)."""
    where, params = search.where("%s")
    count = f"SELECT COUNT(*) FROM clients {where}"
    page = (
        f"SELECT {CLIENT_COLUMNS} FROM clients {where}"
        'ORDER BY group_id COLLATE "C", first_seen, cmid COLLATE "C" LIMIT %s OFFSET %s'
    )
    return count, page, params


def clients_query(group: str | None, limit: int, offset: int) -> tuple[str, list[Any]]:
    """Clients ordered as SQLite orders them: COLLATE "C" is its byte order, whatever the
    database's collation."""
    where, params = ("WHERE group_id = %s", [group]) if group is not None else ("", [])
    sql = (
        f"SELECT {CLIENT_COLUMNS} FROM clients {where} "
        'ORDER BY group_id COLLATE "C", first_seen, cmid COLLATE "C" LIMIT %s OFFSET %s'
    )
    return sql, [*params, limit, offset]


CountKey = tuple[str, int, int | None]
"""(group, cutoff, cap): one count a batch reads."""


def read_batch_parameters(
    pairs: Sequence[ClientKey], counts: Sequence[CountKey]
) -> tuple[list[Any], ...]:
    """The parameters of ``READ_BATCH`` for the rows of ``pairs`` and the ``counts``."""
    return (
        [cmid for cmid, _ in pairs],
        [group for _, group in pairs],
        [group for group, _, _ in counts],
        [cutoff for _, cutoff, _ in counts],
        [cap for _, _, cap in counts],
    )


def read_batch_rows(
    rows: Iterable[Sequence[Any]], pairs: Sequence[ClientKey], counts: Sequence[CountKey]
) -> tuple[dict[ClientKey, KnownClient], dict[CountKey, int]]:
    """The clients and counts in the rows ``READ_BATCH`` returned."""
    clients: dict[ClientKey, KnownClient] = {}
    read_counts: dict[CountKey, int] = {}
    for kind, position, number, fingerprint, blocked, first_seen, *rest in rows:
        if kind == 0:
            cmid, group = pairs[position - 1]
            product, machine, state, valid_until = rest
            clients[cmid, group] = KnownClient(
                cmid=cmid,
                group=group,
                fingerprint=fingerprint,
                blocked=bool(blocked),
                first_seen=int(first_seen),
                last_seen=int(number),
                product=product,
                machine=machine,
                state=state,
                valid_until=None if valid_until is None else int(valid_until),
            )
        else:
            read_counts[counts[position - 1]] = int(number)
    return clients, read_counts


def client_columns(written: Iterable[KnownClient]) -> list[list[Any]]:
    """The client columns of ``WRITE_BATCH`` for the rows a batch merged."""
    rows = list(written)
    return [
        [row.cmid for row in rows],
        [row.group for row in rows],
        [row.product for row in rows],
        [row.fingerprint for row in rows],
        [row.machine for row in rows],
        [row.state for row in rows],
        [row.first_seen for row in rows],
        [row.last_seen for row in rows],
        [row.valid_until for row in rows],
    ]


def event_columns(events: Sequence[Event]) -> list[list[Any]]:
    """The parameters of ``INSERT_EVENTS`` (and the event columns of ``WRITE_BATCH``)."""
    return [
        [event.at for event in events],
        [event.kind for event in events],
        [event.cmid for event in events],
        [event.group for event in events],
        [json.dumps(event.details) for event in events],
    ]
