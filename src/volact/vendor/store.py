"""The vendor store: one SQLite file (``vendor.db``) in the vendor directory.

It holds the vendor's identity, the list of root keys (the private keys are files, see
:mod:`volact.vendor.files`), groups and their policy, products, every key issued, and every
activation made with a key: each host certification and each machine a MAK activated.

Writes happen inside :meth:`VendorStore.transaction` (``BEGIN IMMEDIATE``), so a count check and
the insert that uses the count are one step even when the CLI and the vendor service write at
the same time. Time is always passed in (``now``); SQL never reads a clock. The database runs in
WAL mode with a busy timeout, and every ``sqlite3`` failure becomes ``storage_error``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volact.core.errors import BadRequest, NotFound, StorageError
from volact.core.policy import GroupPolicy

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA_V1 = """
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE root_keys (
    seq INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'valid', 'retired')),
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE TABLE groups (
    group_id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    group_id TEXT NOT NULL REFERENCES groups (group_id),
    oob_grace INTEGER NOT NULL,
    rearm_limit INTEGER NOT NULL,
    srv_service TEXT NOT NULL,
    activation_url TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE keys (
    serial TEXT PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('gvlk', 'host', 'mak')),
    key_text TEXT NOT NULL,
    product_id TEXT REFERENCES products (product_id),
    groups TEXT,
    customer TEXT,
    activation_limit INTEGER,
    validity INTEGER,
    used INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE host_certifications (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL REFERENCES keys (serial),
    request_id TEXT NOT NULL UNIQUE,
    host_id TEXT NOT NULL,
    host_key TEXT NOT NULL,
    machine TEXT NOT NULL,
    cert_id TEXT NOT NULL,
    root_key_id TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    issued_at INTEGER NOT NULL,
    not_after INTEGER NOT NULL
);
CREATE INDEX host_certifications_by_key ON host_certifications (serial, host_id);
CREATE TABLE mak_activations (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL REFERENCES keys (serial),
    cmid TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    product_id TEXT NOT NULL,
    machine TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    issues INTEGER NOT NULL,
    UNIQUE (serial, cmid, fingerprint)
);
"""

_MIGRATIONS = {1: _SCHEMA_V1}


@dataclass(frozen=True)
class RootKeyRecord:
    seq: int
    key_id: str
    public_key: str
    state: str  # "active" (signs), "valid" (listed, verifies), "retired" (neither)
    created_at: int
    retired_at: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key,
            "state": self.state,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
        }


@dataclass(frozen=True)
class GroupRecord:
    group_id: str
    policy: GroupPolicy
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class ProductRecord:
    product_id: str
    name: str
    group_id: str
    oob_grace: int
    rearm_limit: int
    srv_service: str
    activation_url: str | None
    created_at: int


@dataclass(frozen=True)
class KeyRecord:
    serial: str
    channel: str
    key_text: str
    product_id: str | None
    groups: tuple[str, ...]
    customer: str | None
    activation_limit: int | None  # hosts (host key) or machines (MAK); None for a GVLK
    validity: int | None  # MAK ticket validity in seconds; None = permanent
    used: int  # distinct hosts (host key) or machines (MAK) so far
    created_at: int

    def to_json(self, *, reveal: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "serial": self.serial,
            "channel": self.channel,
            "product": self.product_id,
            "groups": list(self.groups),
            "customer": self.customer,
            "limit": self.activation_limit,
            "used": self.used,
            "validity": self.validity,
            "created_at": self.created_at,
        }
        if reveal:
            data["key"] = self.key_text
        return data


def _wrap(exc: sqlite3.Error, path: Path) -> StorageError:
    return StorageError(f"the vendor database {path} failed: {exc}")


class VendorStore:
    """The vendor's SQLite database. One connection; callers serialise access (the service
    holds a lock), and SQLite's file locking serialises the CLI against the service."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> VendorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self) -> None:
        # Check and migrate inside one write transaction, so two processes opening a new
        # database at once do not both create the tables.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"the vendor database {self.path} has schema version {version}, newer than "
                    f"this program's {SCHEMA_VERSION}; upgrade volact"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                # Not executescript(): it would commit the open transaction first.
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {target}")
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (``BEGIN IMMEDIATE``): all or nothing."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from None
        try:
            yield
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise _wrap(exc, self.path) from None
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise BadRequest(f"the vendor database refused the change: {exc}") from None
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from None

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if not self._conn.in_transaction:
            raise RuntimeError("store writes must run inside VendorStore.transaction()")
        return self._execute(sql, params)

    # --- identity ------------------------------------------------------------------------

    def set_identity(self, vendor_id: str, vendor_name: str, now: int) -> None:
        for name, value in (("vendor_id", vendor_id), ("vendor_name", vendor_name)):
            self._write("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
        self._write("INSERT INTO meta (name, value) VALUES ('created_at', ?)", (str(now),))

    def _meta(self, name: str) -> str:
        row = self._execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"the vendor database {self.path} is not initialised (no {name})")
        return str(row[0])

    @property
    def vendor_id(self) -> str:
        return self._meta("vendor_id")

    @property
    def vendor_name(self) -> str:
        return self._meta("vendor_name")

    def initialised(self) -> bool:
        row = self._execute("SELECT 1 FROM meta WHERE name = 'vendor_id'").fetchone()
        return row is not None

    # --- root keys -----------------------------------------------------------------------

    def root_keys(self) -> list[RootKeyRecord]:
        rows = self._execute(
            "SELECT seq, key_id, public_key, state, created_at, retired_at FROM root_keys "
            "ORDER BY seq"
        ).fetchall()
        return [RootKeyRecord(*row) for row in rows]

    def next_root_key_seq(self) -> int:
        row = self._execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM root_keys").fetchone()
        return int(row[0])

    def add_root_key(
        self, seq: int, key_id: str, public_key: str, now: int, *, active: bool
    ) -> None:
        """Record a new root key: listed ('valid'), or the signing key ('active')."""
        if active:
            self._write("UPDATE root_keys SET state = 'valid' WHERE state = 'active'")
        self._write(
            "INSERT INTO root_keys (seq, key_id, public_key, state, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (seq, key_id, public_key, "active" if active else "valid", now),
        )

    def activate_root_key(self, key_id: str) -> None:
        """Make a listed key the signing key; the previous signing key stays listed."""
        self._write("UPDATE root_keys SET state = 'valid' WHERE state = 'active'")
        self._write("UPDATE root_keys SET state = 'active' WHERE key_id = ?", (key_id,))

    def retire_root_key(self, key_id: str, now: int) -> None:
        self._write(
            "UPDATE root_keys SET state = 'retired', retired_at = ? WHERE key_id = ?",
            (now, key_id),
        )

    # --- groups --------------------------------------------------------------------------

    def group(self, group_id: str) -> GroupRecord | None:
        row = self._execute(
            "SELECT group_id, policy, created_at, updated_at FROM groups WHERE group_id = ?",
            (group_id,),
        ).fetchone()
        return None if row is None else self._group(row)

    def groups(self) -> list[GroupRecord]:
        rows = self._execute(
            "SELECT group_id, policy, created_at, updated_at FROM groups ORDER BY group_id"
        ).fetchall()
        return [self._group(row) for row in rows]

    def _group(self, row: tuple[Any, ...]) -> GroupRecord:
        try:
            policy = GroupPolicy.from_dict(json.loads(row[1]))
        except (ValueError, BadRequest) as exc:
            raise StorageError(
                f"the policy of group {row[0]!r} in {self.path} is damaged: {exc}"
            ) from None
        return GroupRecord(row[0], policy, row[2], row[3])

    def put_group(self, group_id: str, policy: GroupPolicy, now: int) -> None:
        text = json.dumps(policy.to_dict(), sort_keys=True)
        self._write(
            "INSERT INTO groups (group_id, policy, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (group_id) DO UPDATE SET policy = excluded.policy, "
            "updated_at = excluded.updated_at",
            (group_id, text, now, now),
        )

    # --- products ------------------------------------------------------------------------

    _PRODUCT_COLUMNS = (
        "product_id, name, group_id, oob_grace, rearm_limit, srv_service, activation_url, "
        "created_at"
    )

    def product(self, product_id: str) -> ProductRecord | None:
        row = self._execute(
            f"SELECT {self._PRODUCT_COLUMNS} FROM products WHERE product_id = ?", (product_id,)
        ).fetchone()
        return None if row is None else ProductRecord(*row)

    def products(self) -> list[ProductRecord]:
        rows = self._execute(
            f"SELECT {self._PRODUCT_COLUMNS} FROM products ORDER BY product_id"
        ).fetchall()
        return [ProductRecord(*row) for row in rows]

    def add_product(self, product: ProductRecord) -> None:
        self._write(
            f"INSERT INTO products ({self._PRODUCT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                product.product_id,
                product.name,
                product.group_id,
                product.oob_grace,
                product.rearm_limit,
                product.srv_service,
                product.activation_url,
                product.created_at,
            ),
        )

    # --- keys ----------------------------------------------------------------------------

    _KEY_COLUMNS = (
        "serial, channel, key_text, product_id, groups, customer, activation_limit, validity, "
        "used, created_at"
    )

    def _key(self, row: tuple[Any, ...]) -> KeyRecord:
        values = list(row)
        values[4] = tuple(json.loads(values[4])) if values[4] else ()
        return KeyRecord(*values)

    def key(self, serial: str) -> KeyRecord | None:
        row = self._execute(
            f"SELECT {self._KEY_COLUMNS} FROM keys WHERE serial = ?", (serial,)
        ).fetchone()
        return None if row is None else self._key(row)

    def keys(self, channel: str | None = None) -> list[KeyRecord]:
        if channel is None:
            rows = self._execute(
                f"SELECT {self._KEY_COLUMNS} FROM keys ORDER BY created_at, serial"
            ).fetchall()
        else:
            rows = self._execute(
                f"SELECT {self._KEY_COLUMNS} FROM keys WHERE channel = ? "
                "ORDER BY created_at, serial",
                (channel,),
            ).fetchall()
        return [self._key(row) for row in rows]

    def add_key(self, key: KeyRecord) -> None:
        self._write(
            f"INSERT INTO keys ({self._KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (serial) DO NOTHING",
            (
                key.serial,
                key.channel,
                key.key_text,
                key.product_id,
                json.dumps(list(key.groups)) if key.groups else None,
                key.customer,
                key.activation_limit,
                key.validity,
                key.used,
                key.created_at,
            ),
        )

    def _use_key(self, serial: str) -> None:
        self._write("UPDATE keys SET used = used + 1 WHERE serial = ?", (serial,))

    # --- host certifications -------------------------------------------------------------

    def request_seen(self, request_id: str) -> bool:
        row = self._execute(
            "SELECT 1 FROM host_certifications WHERE request_id = ?", (request_id,)
        ).fetchone()
        return row is not None

    def certifications_of_host(self, serial: str, host_id: str) -> int:
        row = self._execute(
            "SELECT COUNT(*) FROM host_certifications WHERE serial = ? AND host_id = ?",
            (serial, host_id),
        ).fetchone()
        return int(row[0])

    def record_certification(
        self,
        *,
        serial: str,
        request_id: str,
        host_id: str,
        host_key: str,
        machine: str,
        cert_id: str,
        root_key_id: str,
        via: str,
        address: str | None,
        issued_at: int,
        not_after: int,
        new_host: bool,
    ) -> None:
        self._write(
            "INSERT INTO host_certifications (serial, request_id, host_id, host_key, machine, "
            "cert_id, root_key_id, via, address, issued_at, not_after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                serial,
                request_id,
                host_id,
                host_key,
                machine,
                cert_id,
                root_key_id,
                via,
                address,
                issued_at,
                not_after,
            ),
        )
        if new_host:
            self._use_key(serial)

    def certifications(self, serial: str) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT host_id, machine, cert_id, via, address, issued_at, not_after, request_id "
            "FROM host_certifications WHERE serial = ? ORDER BY id",
            (serial,),
        ).fetchall()
        names = ("host_id", "machine", "cert_id", "via", "address", "issued_at", "not_after")
        return [dict(zip((*names, "request_id"), row, strict=True)) for row in rows]

    def certification_count(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM host_certifications").fetchone()[0])

    # --- MAK activations -----------------------------------------------------------------

    def mak_machine_known(self, serial: str, cmid: str, fingerprint: str) -> bool:
        row = self._execute(
            "SELECT 1 FROM mak_activations WHERE serial = ? AND cmid = ? AND fingerprint = ?",
            (serial, cmid, fingerprint),
        ).fetchone()
        return row is not None

    def record_mak_activation(
        self,
        *,
        serial: str,
        cmid: str,
        fingerprint: str,
        product_id: str,
        machine: str,
        via: str,
        address: str | None,
        now: int,
        new_machine: bool,
    ) -> None:
        if new_machine:
            self._write(
                "INSERT INTO mak_activations (serial, cmid, fingerprint, product_id, machine, via, "
                "address, first_at, last_at, issues) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (serial, cmid, fingerprint, product_id, machine, via, address, now, now),
            )
            self._use_key(serial)
        else:
            self._write(
                "UPDATE mak_activations SET last_at = ?, issues = issues + 1, machine = ?, "
                "via = ?, address = ? WHERE serial = ? AND cmid = ? AND fingerprint = ?",
                (now, machine, via, address, serial, cmid, fingerprint),
            )

    def mak_activations(self, serial: str) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT cmid, fingerprint, product_id, machine, via, address, first_at, last_at, "
            "issues FROM mak_activations WHERE serial = ? ORDER BY id",
            (serial,),
        ).fetchall()
        names = (
            "cmid",
            "fingerprint",
            "product",
            "machine",
            "via",
            "address",
            "first_at",
            "last_at",
            "issues",
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def mak_activation_count(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM mak_activations").fetchone()[0])
