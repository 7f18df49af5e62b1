"""The SQL of the SQLite store's methods, and the conversions between its rows and records.

The rules (which row a write leaves, what a count is) are not here: the batch model
(:mod:`volact.core.batch`) computes each row, and these statements read and write it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson

from volact.core.batch import ClientKey, KnownClient
from volact.core.host_machine import Event
from volact.core.policy import COUNT_WINDOW
from volact.store.base import CLIENT_COLUMNS, CLIENT_UPSERT, ClientSearch

# What a batch reads of a client: everything but (cmid, group), which it asked with.
_READ_COLUMNS = (
    "cmid, fingerprint, blocked, first_seen, last_seen, product, machine, state, valid_until"
)


def select_clients(size: int) -> str:
    """The query for the rows of ``size`` CMIDs of one group (parameters: the CMIDs, the group)."""
    return (
        f"SELECT {_READ_COLUMNS} FROM clients "
        f"WHERE cmid IN ({', '.join('?' * size)}) AND group_id = ?"
    )


SELECT_CLIENT = select_clients(1)
COUNT_LIMITED = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM clients "
    "WHERE group_id = ? AND blocked = 0 AND last_seen >= ? LIMIT ?) AS counted"
)
COUNT_EXACT = "SELECT COUNT(*) FROM clients WHERE group_id = ? AND blocked = 0 AND last_seen >= ?"
# The row as the batch model merged it (a new row is never blocked; ``blocked`` and
# ``first_seen`` of a known row stay as they are).
UPSERT_CLIENT = f"""
INSERT INTO clients (cmid, group_id, product, fingerprint, machine, state, blocked,
                     first_seen, last_seen, valid_until)
VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
{CLIENT_UPSERT}
"""
INSERT_EVENT = "INSERT INTO events (at, kind, cmid, group_id, details) VALUES (?, ?, ?, ?, ?)"
BUMP_STATISTIC = (
    "INSERT INTO statistics (name, value) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = statistics.value + excluded.value"
)
SET_BLOCKED = "UPDATE clients SET blocked = ? WHERE cmid = ?"
GROUPS_OF = "SELECT group_id FROM clients WHERE cmid = ? ORDER BY group_id"
# A range on the primary key's first column: CMIDs are lower-case ASCII, so [p, p + U+FFFF).
CMIDS_WITH_PREFIX = (
    "SELECT DISTINCT cmid FROM clients WHERE cmid >= ? AND cmid < ? ORDER BY cmid LIMIT ?"
)
PRUNE_OLD = "DELETE FROM events WHERE at < ?"
PRUNE_BEYOND = (
    "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)"
)
SELECT_STATISTICS = "SELECT name, value FROM statistics"
COUNT_GROUPS = (
    "SELECT group_id, COUNT(*) FROM clients WHERE blocked = 0 AND last_seen >= ? "
    "GROUP BY group_id ORDER BY group_id"
)


def search_queries(search: ClientSearch) -> tuple[str, str, list[Any]]:
    """How many clients match ``search``, and one page of them: (count SQL, page SQL, the
    parameters of both; the page's adds limit and offset)."""
    where, params = search.where("?")
    count = f"SELECT COUNT(*) FROM clients {where}"
    page = (
        f"SELECT {CLIENT_COLUMNS} FROM clients {where}"
        "ORDER BY group_id, first_seen, cmid LIMIT ? OFFSET ?"
    )
    return count, page, params


def clients_query(group: str | None, limit: int, offset: int) -> tuple[str, list[Any]]:
    where, params = ("WHERE group_id = ?", [group]) if group is not None else ("", [])
    sql = (
        f"SELECT {CLIENT_COLUMNS} FROM clients {where} "
        "ORDER BY group_id, first_seen, cmid LIMIT ? OFFSET ?"
    )
    return sql, [*params, limit, offset]


class Asking(Protocol):
    """A request that asks about one client: an activation waiting in a batch."""

    @property
    def cmid(self) -> str: ...
    @property
    def group(self) -> str: ...


def read_clients(
    conn: sqlite3.Connection, wanted: Iterable[Asking]
) -> dict[ClientKey, KnownClient]:
    """The stored rows of the (cmid, group) pairs a run of activations asks about: one query
    per group.

    The number of placeholders is rounded up to a power of two (repeating a CMID), so that a
    handful of prepared statements serve every batch size.
    """
    by_group: dict[str, list[str]] = {}
    for asking in wanted:
        by_group.setdefault(asking.group, []).append(asking.cmid)
    rows: dict[ClientKey, KnownClient] = {}
    for group, cmids in by_group.items():
        size = 1 << (len(cmids) - 1).bit_length()
        padded = [*cmids, *[cmids[0]] * (size - len(cmids)), group]
        for row in conn.execute(select_clients(size), padded):
            cmid = row[0]
            rows[cmid, group] = KnownClient(
                cmid=cmid,
                group=group,
                fingerprint=row[1],
                blocked=bool(row[2]),
                first_seen=row[3],
                last_seen=row[4],
                product=row[5],
                machine=row[6],
                state=row[7],
                valid_until=row[8],
            )
    return rows


def count(conn: sqlite3.Connection, group: str, now: int, count_limit: int | None) -> int:
    """The group's count at ``now`` (stopping at ``count_limit``), as stored."""
    cutoff = now - COUNT_WINDOW
    if count_limit is None:
        row = conn.execute(COUNT_EXACT, (group, cutoff)).fetchone()
    else:
        row = conn.execute(COUNT_LIMITED, (group, cutoff, count_limit)).fetchone()
    return int(row[0])


def client_row(client: KnownClient) -> tuple[Any, ...]:
    """The parameters of ``UPSERT_CLIENT`` for a merged row."""
    return (
        client.cmid,
        client.group,
        client.product,
        client.fingerprint,
        client.machine,
        client.state,
        client.first_seen,
        client.last_seen,
        client.valid_until,
    )


def _details_json(details: dict[str, Any]) -> str:
    """An event's details as JSON text: orjson (a host writes an event per request), or the
    standard library for what orjson refuses (text with lone surrogates, huge integers)."""
    try:
        return orjson.dumps(details).decode()
    except TypeError:
        return json.dumps(details)


def event_rows(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    """The parameters of ``INSERT_EVENT`` for each event."""
    return [
        (event.at, event.kind, event.cmid, event.group, _details_json(event.details))
        for event in events
    ]
