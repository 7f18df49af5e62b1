"""Two real `volact host serve` processes on one PostgreSQL database share one count.

Each host has its own certified directory (as two machines would) and listens on its own port on
127.0.0.1; both take the same ``--db postgresql://…`` (a fresh schema per test)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.host.conftest import START_TIMEOUT, ServedHost
from tests.host.helpers import GROUP, VENDOR, body, cmid, make_host
from volact.core import keys
from volact.core.policy import GroupPolicy

from .postgres import fresh_schema, server_address, via_port
from .proxy import TCPProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SUITE = "suite-2026"  # a second group (threshold 5), so the tests here do not share a count
SUITE_PRODUCT = "calc-2026"
SUITE_KEY = keys.make_gvlk(VENDOR, SUITE, SUITE_PRODUCT).text
IN_FLIGHT = 32
REQUEST_TIMEOUT = 60.0
SQL = psycopg.Connection[tuple[Any, ...]]


@dataclass
class Cluster:
    url: str
    schema: str
    hosts: list[ServedHost]
    directories: list[Path]

    @property
    def urls(self) -> list[str]:
        return [host.url for host in self.hosts]


def start_hosts(tmp_path: Path, url: str, count: int, *extra: str) -> list[ServedHost]:
    hosts = []
    for index in range(count):
        directory = tmp_path / f"host-{index}"
        make_host(directory, now(), groups={GROUP: GroupPolicy(), SUITE: GroupPolicy()})
        hosts.append(
            ServedHost(
                directory, "--db", url, "--rate-limit", "0", "--log-level", "warning", *extra
            )
        )
    for host in hosts:
        host.start()
    return hosts


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with fresh_schema() as url:
        hosts: list[ServedHost] = []
        try:
            hosts = start_hosts(tmp_path, url, 2)
            schema = url.split("search_path%3D", 1)[1].split("&", 1)[0]
            yield Cluster(url, schema, hosts, [host.directory for host in hosts])
        finally:
            for host in hosts:
                host.kill()


@pytest.fixture
def sql() -> Iterator[SQL]:
    from .postgres import admin_connection

    with admin_connection() as conn:
        yield conn


def suite_body(n: int, now: int) -> dict[str, Any]:
    return body(n, now, product=SUITE_PRODUCT, key=SUITE_KEY)


def now() -> int:
    return int(time.time())


def http_client(**options: Any) -> httpx.AsyncClient:
    """A client that opens a connection for each request and closes it after the answer.

    The tests here are about counting, not keep-alive: a kept-alive connection left idle (a
    worker waiting on the other host, the test doing SQL) could be closed by the host (uvicorn's
    5-second idle timeout) just as the next request goes out, which fails that request with
    httpx.ReadError. Activations are not retried instead: a retry of a request the host did see
    would be a second request event, and the tests count those.
    """
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits, **options)


async def post_all(requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """POST every (host URL, body), IN_FLIGHT at a time; the answers in the order asked.

    Each worker has a client of its own (a fresh connection per request, see ``http_client``):
    cheaper for the test process than one client whose pool holds every connection.
    """
    answers: list[httpx.Response | None] = [None] * len(requests)
    pending = iter(enumerate(requests))
    tls = ssl.create_default_context()  # unused (plain HTTP), but loaded once, not per client

    async def worker() -> None:
        async with http_client(verify=tls) as http:
            for index, (url, data) in pending:
                answers[index] = await http.post(f"{url}/v1/activate", json=data)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def reported_count(response: httpx.Response) -> int:
    """The count an answer reports: a ticket's, or count_insufficient's details."""
    data = response.json()
    if response.status_code == 200:
        return int(data["count"])
    assert response.status_code == 409, data
    assert data["error"]["code"] == "count_insufficient", data
    return int(data["error"]["details"]["count"])


def volact(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "volact", *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def listed_cmids(cluster: Cluster, group: str) -> list[str]:
    done = volact(
        "host", "clients", "--dir", str(cluster.directories[0]), "--db", cluster.url,
        "--json", "--group", group, "--limit", "100000",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [row["cmid"] for row in json.loads(done.stdout)]


def duplicates(sql: SQL, schema: str) -> list[Any]:
    return sql.execute(
        f'SELECT cmid, group_id, COUNT(*) FROM "{schema}".clients '
        "GROUP BY cmid, group_id HAVING COUNT(*) > 1"
    ).fetchall()


def logs_without_tracebacks(hosts: list[ServedHost]) -> str:
    text = "".join(host.stderr_path.read_text() for host in hosts)
    assert "Traceback" not in text
    return text


# --- one count for two hosts ------------------------------------------------------------------


async def test_five_clients_over_two_hosts_reach_the_threshold(cluster: Cluster) -> None:
    answers = []
    async with http_client() as http:
        for n in range(5):
            url = cluster.urls[n % 2]  # 0, 2, 4 at the first host; 1, 3 at the second
            answers.append(await http.post(f"{url}/v1/activate", json=body(n, now())))
        again = await http.post(f"{cluster.urls[1]}/v1/activate", json=body(0, now()))
    assert [a.status_code for a in answers] == [409, 409, 409, 409, 200]
    assert [reported_count(a) for a in answers] == [1, 2, 3, 4, 5]
    assert answers[4].json()["threshold"] == 5 and answers[4].json()["ticket"]
    assert again.status_code == 200 and again.json()["count"] == 5  # client 0, at the other host
    logs_without_tracebacks(cluster.hosts)


async def test_two_thousand_concurrent_activations_over_two_hosts(
    cluster: Cluster, sql: SQL
) -> None:
    # 1,400 new CMIDs at once, spread over both hosts.
    first = [(cluster.urls[n % 2], suite_body(n, now())) for n in range(1400)]
    answers = await post_all(first)
    assert {a.status_code for a in answers} <= {200, 409}
    counts = Counter(reported_count(a) for a in answers)
    # Decisions in one group are serialised across the hosts: each newcomer saw all earlier
    # ones, so the counts reported are 1, 2, … once each up to the cap (2 x threshold = 10),
    # and only the first four were below the threshold.
    assert counts == {**{k: 1 for k in range(1, 11)}, 11: 1390}
    assert sum(a.status_code == 409 for a in answers) == 4

    # 300 pairs: each CMID at both hosts at the same moment; half are known, half new.
    pairs = [*range(0, 1400, 1400 // 150)][:150]
    pairs += range(5000, 5150)
    second = [(url, suite_body(n, now())) for n in pairs for url in cluster.urls]
    again = await post_all(second)
    assert [a.status_code for a in again] == [200] * 600

    answered = {cmid(n) for n in range(1400)} | {cmid(n) for n in pairs}
    assert len(answered) == 1550
    assert duplicates(sql, cluster.schema) == []
    listed = listed_cmids(cluster, SUITE)
    assert len(listed) == len(set(listed)) == 1550 and set(listed) == answered
    # No lost or doubled writes: one request event and one count in the statistics per answer.
    events = sql.execute(
        f"SELECT COUNT(*) FROM \"{cluster.schema}\".events WHERE kind = 'activation_request'"
    ).fetchone()
    assert events == (2000,)
    status = volact(
        "host", "status", "--dir", str(cluster.directories[1]), "--db", cluster.url, "--json"
    )
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["statistics"]["total"] == 2000  # summed over the hosts' counter shards
    assert data["statistics"]["by_outcome"] == {"activated": 1996, "below_threshold": 4}
    logs_without_tracebacks(cluster.hosts)


async def test_the_same_cmid_at_both_hosts_at_once_is_one_row(cluster: Cluster, sql: SQL) -> None:
    answers = await post_all([(url, body(n, now())) for n in range(40) for url in cluster.urls])
    assert {a.status_code for a in answers} <= {200, 409} and len(answers) == 80
    assert duplicates(sql, cluster.schema) == []
    assert sorted(listed_cmids(cluster, GROUP)) == sorted(cmid(n) for n in range(40))


# --- the database failing ---------------------------------------------------------------------


async def test_killed_database_connections_are_replaced(cluster: Cluster, sql: SQL) -> None:
    async with http_client() as http:
        for n, url in enumerate(cluster.urls):
            assert (await http.post(f"{url}/v1/activate", json=body(n, now()))).status_code == 409
        killed = sql.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"volact-{cluster.schema}",),
        ).fetchall()
        assert len(killed) >= 2  # at least one connection of each host
        answers = [
            await http.post(f"{url}/v1/activate", json=body(10 + n, now()))
            for n, url in enumerate(cluster.urls)
        ]
    assert [reported_count(a) for a in answers] == [3, 4]
    logs_without_tracebacks(cluster.hosts)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("database", "reason"),
    [
        (f"postgresql://postgres:hunter2@127.0.0.1:{closed_port()}/test", "Connection refused"),
        ("postgresql://postgres:hunter2@{server}/volact_no_db", "does not exist"),
    ],
)
def test_a_wrong_database_url_is_one_clear_line(tmp_path: Path, database: str, reason: str) -> None:
    host, port = server_address()  # the test server, asked for a database it does not have
    database = database.replace("{server}", f"{host}:{port}")
    make_host(tmp_path / "host", now())
    for command in (
        ["host", "serve", "--dir", str(tmp_path / "host"), "--port", "0", "--db", database],
        ["host", "clients", "--dir", str(tmp_path / "host"), "--db", database],
    ):
        done = volact(*command)
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("storage_error: the database postgresql://postgres:***@")
        assert reason in lines[0] and "hunter2" not in lines[0]


async def test_a_database_that_goes_away_gives_storage_error_then_recovers(
    tmp_path: Path,
) -> None:
    relay = TCPProxy().start()
    try:
        with fresh_schema() as url:
            through_relay = via_port(url, relay.port)
            hosts = start_hosts(tmp_path, through_relay, 1)
            try:
                await _goes_away_and_back(relay, hosts[0])
            finally:
                hosts[0].kill()
    finally:
        relay.cut()


async def _goes_away_and_back(relay: TCPProxy, host: ServedHost) -> None:
    async with http_client() as http:
        activate = f"{host.url}/v1/activate"
        assert (await http.post(activate, json=body(0, now()))).status_code == 409
        relay.cut()
        down = await http.post(activate, json=body(1, now()))
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "storage_error"
        log = logs_without_tracebacks([host])
        failures = [line for line in log.splitlines() if "storage failure" in line]
        assert failures and "refused" in failures[-1].lower()

        relay.start()
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            back = await http.post(activate, json=body(2, now()))
            if back.status_code != 503:
                break
            assert asyncio.get_running_loop().time() < deadline, "the host did not reconnect"
            await asyncio.sleep(0.2)
        assert reported_count(back) == 2  # the failed request left nothing behind
        assert (await http.post(activate, json=body(1, now()))).json()["error"]["details"][
            "count"
        ] == 3
    logs_without_tracebacks([host])
