"""The PostgreSQL store's connections: one pool per store, plain errors, and the retries.

:class:`Database` opens the schema (migrating it once, under an advisory lock), keeps a pool of
connections with the host's session settings, and runs transactions and reads on it:

- every psycopg failure becomes :class:`~volact.core.errors.StorageError` with a plain one-line
  message that never shows the password, raised from the driver's exception;
- a transaction whose connection broke before COMMIT is retried on a fresh connection (nothing
  of it was committed), as is one that hit a deadlock or a serialisation failure (at most
  :data:`MAX_RETRIES` attempts); a connection lost *during* COMMIT is not retried, because the
  outcome is unknown;
- a statement that failed on a good connection (bad data, a constraint) raises
  :class:`StatementFailed`, so that the store's writer can rerun a batch one request at a time;
- once a connection was lost, the next call asks the server directly whether it answers, so
  that requests fail at once while it is down rather than after waiting for the pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from volact.core.errors import ConfigurationError, StorageError
from volact.sql.errors import is_connection_failure, one_line
from volact.sql.migrations import rollback_quietly_async
from volact.sql.urls import hide_password, redact_url, url_password

T = TypeVar("T")

Connection = psycopg.AsyncConnection[Any]

DEFAULT_POOL_SIZE = 4
CONNECT_TIMEOUT = 5
"""Seconds one connection attempt may take (libpq ``connect_timeout``), unless the URL sets it."""
ACQUIRE_TIMEOUT = 5.0
"""Seconds a request waits for a pooled connection before it fails with ``storage_error``."""
LOCK_TIMEOUT = 15.0
"""Seconds a batch waits for another host's lock on a group before it fails with
``storage_error``, rather than queueing requests forever behind a host that hangs."""
SESSION_SETTINGS = (
    "SET statement_timeout = '30s'",
    # A host that freezes inside a transaction (and so holds a group's lock) is cut off by the
    # server after this long, which releases the lock for the other hosts.
    "SET idle_in_transaction_session_timeout = '60s'",
)
RECONNECT_TIMEOUT = 30.0
"""Seconds the pool keeps retrying one lost connection (backing off: 1, 2, 4, … s) before it gives
up and lets the next request start afresh: after an outage, the host reconnects within about
half of this once the database is back."""
MAX_RETRIES = 3
APPLICATION_NAME = "volact-host"
BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"

Migrate = Callable[[Connection, str], Awaitable[None]]
"""Migrates the schema (its name the second argument) on a connection of its own."""


class StatementFailed(StorageError):
    """A statement failed on a good connection (bad data, a constraint): the transaction is
    rolled back, and rerunning the batch's other jobs without this one can succeed."""


def _is_connection_failure(exc: BaseException, conn: Connection | None) -> bool:
    return (conn is not None and (conn.broken or conn.closed)) or is_connection_failure(exc)


class Database:
    """The pool of one store (see the module docstring). ``url`` is a libpq URL; the tables
    live in the connection's current schema, :attr:`namespace` once opened."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.url = redact_url(url)
        self._password = url_password(url)
        self.pool_size = max(pool_size, 2)
        self.acquire_timeout = acquire_timeout
        self.lock_timeout = lock_timeout
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"the database URL {self.url} cannot be read: {self._clean(one_line(str(exc)))}"
            ) from exc
        self._password = str(params.get("password") or self._password)
        self._conninfo = url
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = APPLICATION_NAME
        self._pool: AsyncConnectionPool[Connection] | None = None
        self.namespace = ""
        self._healthy = True  # False once a connection was lost, until a statement succeeds

    # --- errors ---------------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        return hide_password(text, self._password)

    def _storage_error(
        self, exc: BaseException, *, lost: bool = False, committing: bool = False
    ) -> StorageError:
        """A plain, one-line StorageError for a psycopg failure (never the password).

        ``lost``: the connection broke. A statement that failed on a good connection (bad data,
        a constraint) gives a ``StatementFailed``, which the writer answers by rerunning a
        batch one request at a time.
        """
        reason = self._clean(one_line(str(exc)))
        if isinstance(exc, pg_errors.LockNotAvailable):
            reason = "a product group stayed locked by another host (lock_timeout)"
        elif isinstance(exc, pg_errors.QueryCanceled):
            reason = f"a statement took too long (statement_timeout): {reason}"
        if committing:
            reason = f"the connection failed while committing, so the outcome is unknown: {reason}"
        message = f"the database {self.url} cannot be used: {reason}"
        if (
            not lost
            and not committing
            and isinstance(exc, psycopg.DatabaseError)
            and not isinstance(exc, psycopg.OperationalError)
        ):
            return StatementFailed(message, {"cause": reason})
        return StorageError(message, {"cause": reason})

    async def _probe(self) -> StorageError | None:
        """Ask the server directly (not the pool) whether it answers; the reason if it does not."""
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs)
        except psycopg.Error as exc:
            return self._storage_error(exc, lost=True)
        await conn.close()
        return None

    async def _unreachable(self) -> StorageError:
        """Why no pooled connection came in time: the server's own answer, if it gives one."""
        self._healthy = False
        problem = await self._probe()
        if problem is not None:
            return problem
        return StorageError(
            f"the database {self.url} cannot be used: no pooled connection became free within "
            f"{self.acquire_timeout:g} s (every connection is busy, or the pool is still "
            "reconnecting after an outage)"
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self, migrate: Migrate) -> None:
        """Connect, read the schema's name, ``migrate``, and open the pool."""
        self._healthy = True
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise self._storage_error(exc) from exc
        try:
            async with conn:
                schema = (
                    await (await conn.execute("SELECT current_schema()")).fetchone() or [None]
                )[0]
                if schema is None:
                    raise StorageError(
                        f"the database {self.url} cannot be used: its search_path names no "
                        "schema that exists (create the schema, or fix options=-csearch_path)"
                    )
                self.namespace = str(schema)
                await migrate(conn, self.namespace)
        except psycopg.Error as exc:
            raise self._storage_error(exc) from exc
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._conninfo,
            kwargs=self._connect_kwargs,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            configure=self._configure,
            timeout=self.acquire_timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            name=f"volact-{self.namespace}",
        )
        try:
            await pool.open(wait=True, timeout=self.acquire_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise await self._unreachable() from exc
        self._pool = pool

    async def _configure(self, conn: Connection) -> None:
        """Session settings of every pooled connection."""
        for setting in SESSION_SETTINGS:
            await conn.execute(setting)
        await conn.execute(
            sql.SQL("SET lock_timeout = {}").format(f"{max(int(self.lock_timeout * 1000), 1)}ms")
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # --- connections and transactions -----------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        # The store's close() lets its writer finish what is queued before the pool goes.
        pool = self._pool
        if pool is None:
            raise StorageError(f"the store {self.url} is not open")
        if not self._healthy:
            # The last attempt lost the database. If it is still gone, say so now rather than
            # after waiting ``acquire_timeout`` for the pool.
            problem = await self._probe()
            if problem is not None:
                raise problem
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise await self._unreachable() from exc

    async def transaction(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one READ COMMITTED transaction and commit; retry what is safe.

        Raises StorageError (``StatementFailed`` for a failed statement); an exception from
        ``body`` itself propagates after the rollback.
        """
        attempt = 0
        while True:
            attempt += 1
            committing = False
            used: Connection | None = None
            try:
                async with self.connection() as conn:
                    used = conn
                    try:
                        await conn.execute(BEGIN)
                        result = await body(conn)
                        committing = True
                        await conn.execute("COMMIT")
                        self._healthy = True
                        return result
                    except BaseException:
                        await rollback_quietly_async(conn)
                        raise
            except psycopg.Error as exc:
                lost = _is_connection_failure(exc, used)
                if lost:
                    self._healthy = False
                if committing and lost:
                    raise self._storage_error(exc, lost=True, committing=True) from exc
                retry = lost or isinstance(
                    exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
                )
                if retry and attempt < MAX_RETRIES:
                    if lost and self._pool is not None:
                        # Drop every other connection the server cut too, then try once more.
                        with contextlib.suppress(psycopg.Error):
                            await self._pool.check()
                    continue
                raise self._storage_error(exc, lost=lost) from exc

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """A read on a pooled (autocommit) connection; retried once if the connection broke."""
        for attempt in range(2):
            used: Connection | None = None
            try:
                async with self.connection() as conn:
                    used = conn
                    result = await body(conn)
                    self._healthy = True
                    return result
            except psycopg.Error as exc:
                lost = _is_connection_failure(exc, used)
                if lost:
                    self._healthy = False
                if attempt == 0 and lost and self._pool is not None:
                    with contextlib.suppress(psycopg.Error):
                        await self._pool.check()
                    continue
                raise self._storage_error(exc, lost=lost) from exc
        raise AssertionError("unreachable")  # pragma: no cover
