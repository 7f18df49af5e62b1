"""PostgreSQL for the tests: one server per test session, a fresh schema per test.

The server is the one named by ``VOLACT_TEST_POSTGRES`` (a ``postgresql://`` URL over TCP) when
that is set. Otherwise the first test that needs PostgreSQL starts a throwaway cluster: initdb
in a temporary folder (trust auth, so no password is asked), listening on a free loopback port,
started with pg_ctl; ``tests/conftest.py`` stops and removes it when the session ends, failed
tests or not. initdb refuses to run as root, so as root the cluster runs as the ``postgres``
user (``nobody`` if there is none). These tests never skip: if the server cannot be had they
fail and say why.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from tests.ports import free_port

ENV_VAR = "VOLACT_TEST_POSTGRES"
DATABASE = "test"
START_TIMEOUT = 120  # seconds for pg_ctl to see the server up (a busy machine is slow)


def _bin_dir() -> Path:
    """The directory of initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name.split(".")[0] or 0),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is None:
        pytest.fail(
            f"PostgreSQL is needed but initdb was not found (install the postgresql package, "
            f"or name a server in {ENV_VAR})",
            pytrace=False,
        )
    return Path(on_path).parent


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Who runs the cluster: ourselves, unless we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root, and neither a postgres nor a nobody user exists", pytrace=False)


@dataclass
class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary folder, removed by :meth:`remove`."""

    folder: Path
    user: pwd.struct_passwd | None
    bin_dir: Path
    port: int = 0
    options: str = ""  # more ``-c name=value`` settings for pg_ctl start (replication)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, Any] = {}
        if self.user is not None:
            as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.folder,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            timeout=START_TIMEOUT + 30,
            check=False,
            **as_user,
        )

    @classmethod
    def folder_for_cluster(cls, options: str = "") -> ThrowawayCluster:
        """An empty cluster folder (no data directory yet) that its user can reach."""
        user = _unprivileged_user()
        # As root, under /tmp: the cluster's user must reach it (TMPDIR may be root's own).
        parent = "/tmp" if user is not None and os.path.isdir("/tmp") else None
        folder = Path(tempfile.mkdtemp(prefix="volact-pg-", dir=parent))
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        return cls(folder, user, _bin_dir(), options=options)

    @classmethod
    def create(cls, options: str = "") -> ThrowawayCluster:
        cluster = cls.folder_for_cluster(options)
        try:
            done = cluster._run(
                "initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
            cluster._start()
            with psycopg.connect(cluster.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
                c.execute(f"CREATE DATABASE {DATABASE}")
        except BaseException as exc:
            cluster.remove()
            if isinstance(exc, Exception):
                pytest.fail(f"could not start a throwaway PostgreSQL: {exc}", pytrace=False)
            raise
        return cluster

    def _start(self) -> None:
        """pg_ctl start on a free port; another port if that one was taken meanwhile."""
        for _ in range(5):
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.folder} -c fsync=off "
                "-c full_page_writes=off -c autovacuum=off -c max_connections=100 "
                f"{self.options}"
            )
            done = self._run(
                "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
                "-t", str(START_TIMEOUT), "-o", options,
            )  # fmt: skip
            if done.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "could not bind" not in log and "already in use" not in log:
                raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{log}")
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate")
        raise RuntimeError(f"no free port for PostgreSQL:\n{self.log.read_text()}")

    def remove(self) -> None:
        """Stop the server (at once: nothing in it is worth keeping) and delete its folder."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            done = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
            if done.returncode != 0 and pid_file.exists():  # the server we started, by its id
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


_cluster: ThrowawayCluster | None = None


def server_url() -> str:
    """The URL of the test database: ``VOLACT_TEST_POSTGRES``, else the session's throwaway
    cluster (started on first use)."""
    global _cluster
    if named := os.environ.get(ENV_VAR):
        return named
    if _cluster is None:
        _cluster = ThrowawayCluster.create()
        atexit.register(stop_throwaway_cluster)  # a backstop: the session fixture stops it
    return _cluster.url


def stop_throwaway_cluster() -> None:
    """Stop and remove the throwaway cluster, if this session started one."""
    global _cluster
    if _cluster is not None:
        cluster, _cluster = _cluster, None
        cluster.remove()


def server_address() -> tuple[str, int]:
    """The test server's host and port."""
    parts = urlsplit(server_url())
    return parts.hostname or "127.0.0.1", parts.port or 5432


def via_port(url: str, port: int) -> str:
    """``url`` with its server replaced by 127.0.0.1:``port`` (a relay, or a wrong address)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test database, or a clear test failure."""
    url = server_url()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({reason}); these tests need it: unset "
            f"{ENV_VAR} to have the tests start a server of their own",
            pytrace=False,
        )


def schema_url(schema: str, **parameters: str) -> str:
    """The URL of ``schema`` in the test database (its tables go there, via search_path)."""
    url = server_url()
    query = "&".join(
        [f"options={quote(f'-csearch_path={schema}')}"]
        + [f"{name}={quote(value)}" for name, value in parameters.items()]
    )
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{query}"


@contextmanager
def fresh_schema(**parameters: str) -> Iterator[str]:
    """Create an empty schema, yield its URL, drop it (and everything in it) at the end."""
    schema = f"volact_test_{uuid.uuid4().hex[:16]}"
    parameters.setdefault("application_name", f"volact-{schema}")
    with admin_connection() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(schema, **parameters)
    finally:
        with admin_connection() as conn:
            # Sessions a test left behind (a killed host) must not keep the schema's locks.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = %s",
                (f"volact-{schema}",),
            )
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
