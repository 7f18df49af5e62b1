"""The vendor store: one SQLite file (``vendor.db``) in the vendor directory, or PostgreSQL.

It holds the vendor's identity, the list of root keys (the private keys are files, see
:mod:`volact.authority.files`), groups and their policy, products, every key issued, and every
activation made with a key: each host certification and each machine a MAK activated.

Writes happen inside :meth:`VendorStore.transaction` (``BEGIN IMMEDIATE``), so a count check and
the insert that uses the count are one step even when the CLI and the vendor service write at
the same time. Time is always passed in (``now``); SQL never reads a clock. The database runs in
WAL mode with a busy timeout, and every ``sqlite3`` failure becomes ``storage_error``.

Scale-out: given a ``postgresql://`` URL the same store runs on PostgreSQL (psycopg, one
synchronous connection), so several vendor processes share one database and therefore one count
per key. A small adapter keeps the SQL one text: ``?`` placeholders become ``%s`` (once per
statement text), and :meth:`VendorStore.transaction` is ``BEGIN`` plus one transaction-level
advisory lock per schema (vendor writes are rare; the lock keeps "count, then insert" of the
host and MAK limits correct across processes).

The schema is ``volact/sql/schemas/vendor/*.sql``, applied at open by the one migration runner
(:mod:`volact.sql.migrations`; the version is ``PRAGMA user_version`` on SQLite and the
``vendor_schema_version`` table on PostgreSQL). Unique and other constraint failures become
``bad_request``; every other failure (the server unreachable, a lost connection) becomes
``storage_error`` with a one-line message that never shows the password
(:mod:`volact.sql.errors`), raised from the driver's exception.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from volact.authority.certifications import CertificationTables
from volact.authority.records import GroupRecord, KeyRecord, ProductRecord, RootKeyRecord
from volact.core.errors import BadRequest, ConfigurationError, NotFound, StorageError
from volact.core.policy import GroupPolicy
from volact.sql import migrations
from volact.sql.errors import driver_errors, is_constraint_violation, one_line
from volact.sql.locks import lock_key
from volact.sql.urls import (
    hide_password,
    is_postgres_url,
    redact_url,
    sqlite_url_path,
    url_password,
)

log = logging.getLogger("volact.vendor")

BUSY_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10

__all__ = ["VendorStore", "is_postgres_url", "sqlite_path"]


def sqlite_path(location: Path | str) -> Path:
    """The file of a SQLite location: a path, or a ``sqlite:///PATH`` URL."""
    if isinstance(location, Path):
        return location
    rest = sqlite_url_path(location)
    if rest is not None:
        if not rest:
            raise ConfigurationError("the database URL sqlite:/// names no file")
        return Path(rest)
    if "://" in location:
        raise ConfigurationError(
            f"the database URL {location.split('://', 1)[0]}://… is not supported; use "
            "sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return Path(location)


class VendorStore(CertificationTables):
    """The vendor's database: SQLite (a path or ``sqlite:///PATH``) or PostgreSQL (a
    ``postgresql://`` URL). One connection; callers serialise access (the service holds a
    lock). SQLite's file locking, or PostgreSQL's advisory lock, serialises writers across
    processes."""

    def __init__(self, location: Path | str) -> None:
        self.postgres = is_postgres_url(location)
        self._sql: dict[str, str] = {}
        self._password = ""
        self._lock_key = 0
        self.path: Path | None = None
        if self.postgres:
            self._open_postgres(str(location))
            return
        self.path = sqlite_path(location)
        self.label = str(self.path)
        try:
            self._conn: Any = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=FULL")
            migrations.migrate_sqlite(self._conn, "vendor", self._too_new)
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc

    # --- the adapter ---------------------------------------------------------------------

    def _open_postgres(self, url: str) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        self.label = redact_url(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"the database URL {self.label} cannot be read: "
                f"{hide_password(one_line(str(exc)), url_password(url))}"
            ) from exc
        self._password = str(params.get("password") or "")
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        if "application_name" not in params:
            kwargs["application_name"] = "volact-vendor"
        self._connect_args = (url, kwargs)
        # Autocommit: reads run on their own; writes run between the explicit BEGIN and
        # COMMIT of transaction(), as with SQLite's isolation_level=None.
        self._conn = self._connect_postgres()
        try:
            row = self._conn.execute("SELECT current_schema()").fetchone()
            if row is None or row[0] is None:
                raise StorageError(
                    f"the vendor database {self.label} has no current schema (check search_path)"
                )
            self._lock_key = lock_key("volact-vendor", str(row[0]))
            migrations.migrate_postgres(self._conn, "vendor", self._too_new, self._lock_key)
        except psycopg.Error as exc:
            self._conn.close()
            raise self._wrap(exc) from exc
        except BaseException:
            self._conn.close()
            raise

    def _connect_postgres(self) -> Any:
        import psycopg

        url, kwargs = self._connect_args
        try:
            return psycopg.connect(url, **kwargs)
        except psycopg.Error as exc:
            raise StorageError(
                f"the vendor database {self.label} cannot be reached: {self._clean(exc)}"
            ) from exc

    def _too_new(self, version: int, latest: int) -> StorageError:
        return StorageError(
            f"the vendor database {self.label} has schema version {version}, newer than "
            f"this program's {latest}; upgrade volact"
        )

    def _reconnect_if_broken(self) -> None:
        """After a lost PostgreSQL connection (a server restart, a killed backend), the request
        that met it failed with storage_error; the next one connects again."""
        if not self.postgres or not (self._conn.broken or self._conn.closed):
            return
        self._conn = self._connect_postgres()
        log.info("reconnected to the vendor database %s", self.label)

    def _clean(self, exc: BaseException) -> str:
        return hide_password(one_line(str(exc)), self._password)

    def _wrap(self, exc: BaseException) -> StorageError:
        return StorageError(f"the vendor database {self.label} failed: {self._clean(exc)}")

    def _statement(self, sql: str) -> str:
        if not self.postgres:
            return sql
        found = self._sql.get(sql)
        if found is None:
            # The statements hold no '%' and no '?' inside string literals.
            found = self._sql[sql] = sql.replace("?", "%s")
        return found

    @property
    def in_transaction(self) -> bool:
        if self.postgres:
            from psycopg.pq import TransactionStatus

            status = self._conn.info.transaction_status
            return bool(status in (TransactionStatus.INTRANS, TransactionStatus.INERROR))
        return bool(self._conn.in_transaction)

    def _begin(self) -> None:
        """Start a write transaction that holds the store's write lock until it ends."""
        if self.postgres:
            self._conn.execute("BEGIN")
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
        else:
            self._conn.execute("BEGIN IMMEDIATE")

    def _rollback_quietly(self) -> None:
        try:
            if self.in_transaction:
                self._conn.execute("ROLLBACK")
        except driver_errors():
            pass  # The connection is gone; the server rolled back.

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> VendorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``BEGIN`` and the
        store's advisory lock): all or nothing, and one writer at a time."""
        any_error = driver_errors()
        self._reconnect_if_broken()
        try:
            self._begin()
        except any_error as exc:
            self._rollback_quietly()
            raise self._wrap(exc) from exc
        try:
            yield
            self._conn.execute("COMMIT")
        except any_error as exc:
            self._rollback_quietly()
            raise self._wrap(exc) from exc
        except BaseException:
            self._rollback_quietly()
            raise

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if not self.in_transaction:
            self._reconnect_if_broken()
        try:
            return self._conn.execute(self._statement(sql), params)
        except driver_errors() as exc:
            if is_constraint_violation(exc):
                raise BadRequest(
                    f"the vendor database refused the change: {self._clean(exc)}"
                ) from exc
            raise self._wrap(exc) from exc

    def _number(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """The one number ``sql`` selects (a count, a next sequence number)."""
        return int(self._execute(sql, params).fetchone()[0])

    def _dicts(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Each row ``sql`` selects as a dict keyed by the selected column names."""
        cursor = self._execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if not self.in_transaction:
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
            raise NotFound(f"the vendor database {self.label} is not initialised (no {name})")
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
            "SELECT seq, key_id, public_key, state, created_at, retired_at, storage "
            "FROM root_keys ORDER BY seq"
        ).fetchall()
        return [RootKeyRecord(*row) for row in rows]

    def next_root_key_seq(self) -> int:
        return self._number("SELECT COALESCE(MAX(seq), 0) + 1 FROM root_keys")

    def add_root_key(
        self,
        seq: int,
        key_id: str,
        public_key: str,
        now: int,
        *,
        active: bool,
        storage: str | None = None,
    ) -> None:
        """Record a new root key: listed ('valid'), or the signing key ('active')."""
        if active:
            self._write("UPDATE root_keys SET state = 'valid' WHERE state = 'active'")
        self._write(
            "INSERT INTO root_keys (seq, key_id, public_key, state, created_at, storage) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (seq, key_id, public_key, "active" if active else "valid", now, storage),
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
                f"the policy of group {row[0]!r} in {self.label} is damaged: {exc}"
            ) from exc
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
        return self._dicts(
            "SELECT cmid, fingerprint, product_id AS product, machine, via, address, first_at, "
            "last_at, issues FROM mak_activations WHERE serial = ? ORDER BY id",
            (serial,),
        )

    def mak_activation_count(self) -> int:
        return self._number("SELECT COUNT(*) FROM mak_activations")
