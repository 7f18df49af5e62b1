"""A primary and a synchronous streaming standby, each a throwaway cluster (see postgres.py).

The primary streams its WAL to the standby and waits, at every commit, until the standby has
flushed it (``synchronous_standby_names``): a commit that the primary acknowledged is on the
standby too. :meth:`ReplicatedPair.kill_primary` kills the primary's postmaster and every one of
its processes with SIGKILL (a machine that dies); :meth:`ReplicatedPair.promote` makes the
standby the primary (``pg_ctl promote``), as a failover manager (Patroni) would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .postgres import DATABASE, START_TIMEOUT, ThrowawayCluster

STANDBY_NAME = "standby1"
REPLICATION = "-c wal_level=replica -c max_wal_senders=4 -c wal_keep_size=64MB"
# The standby has no standby of its own: once promoted, its commits must not wait for one.
STANDBY_OPTIONS = f"{REPLICATION} -c hot_standby=on"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class ReplicatedPair:
    primary: ThrowawayCluster
    standby: ThrowawayCluster

    def url(self, **parameters: str) -> str:
        """A libpq multi-host URL naming both servers; with ``target_session_attrs=read-write``
        libpq connects to whichever of them accepts writes."""
        query = "&".join(f"{name}={value}" for name, value in parameters.items())
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{DATABASE}" + (f"?{query}" if query else "")

    @classmethod
    def create(cls) -> ReplicatedPair:
        # Synchronous only once the standby streams: until then every commit would wait.
        primary = ThrowawayCluster.create(REPLICATION)
        standby = ThrowawayCluster.folder_for_cluster(STANDBY_OPTIONS)
        pair = cls(primary, standby)
        try:
            done = standby._run(
                "pg_basebackup", "-D", str(standby.data), "-h", "127.0.0.1",
                "-p", str(primary.port), "-U", "postgres", "-X", "stream", "--no-sync",
                "--checkpoint=fast",
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"pg_basebackup failed:\n{done.stdout}{done.stderr}")
            conninfo = (
                f"host=127.0.0.1 port={primary.port} user=postgres application_name={STANDBY_NAME}"
            )
            with open(standby.data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
                conf.write(f"primary_conninfo = '{conninfo}'\n")
            (standby.data / "standby.signal").touch()
            if standby.user is not None:
                for name in ("postgresql.auto.conf", "standby.signal"):
                    os.chown(standby.data / name, standby.user.pw_uid, standby.user.pw_gid)
            standby._start()
            with psycopg.connect(primary.url, autocommit=True) as conn:
                conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
                conn.execute("SELECT pg_reload_conf()")
            pair.wait_for_synchronous_standby()
        except BaseException:
            pair.remove()
            raise
        return pair

    def wait_for_synchronous_standby(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with psycopg.connect(self.primary.url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (STANDBY_NAME,),
                ).fetchone()
                if row == ("sync",):
                    return
                time.sleep(0.1)
        raise RuntimeError(f"the standby never became synchronous:\n{self.standby.log.read_text()}")

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and all its processes: the machine is gone."""
        pid = int((self.primary.data / "postmaster.pid").read_text().split()[0])
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def promote(self) -> None:
        done = self.standby._run("pg_ctl", "promote", "-D", str(self.standby.data), "-w")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl promote failed:\n{done.stdout}{done.stderr}")

    def remove(self) -> None:
        self.standby.remove()
        self.primary.remove()
