"""The admin listener of a real `volact host serve`: apart from the activation port, on
127.0.0.1 by default, and scraped by a real Prometheus (Debian's `prometheus`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.host.conftest import ServedHost
from tests.host.helpers import GROUP, CertifiedHost, body
from tests.ports import free_port
from volact.host.admin.token import token_path

from .conftest import READY_TIMEOUT, LiveAdmin

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE_TIMEOUT = 120.0


def test_the_activation_port_serves_nothing_of_the_admin_listener(
    live_admin: Callable[..., LiveAdmin],
) -> None:
    live = live_admin()
    for path in ("/admin/v1/status", "/metrics", "/", "/login", "/admin/v1/openapi.json"):
        answer = httpx.get(f"{live.served.url}{path}", headers=live.auth)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{live.url}/admin/v1/status", headers=live.auth).status_code == 200
    assert admin_urls(live.served) == [live.url]  # 127.0.0.1: the default bind


def test_no_admin_and_no_metrics(live_admin: Callable[..., LiveAdmin]) -> None:
    live = live_admin("--no-metrics")
    answer = httpx.get(f"{live.url}/metrics", headers=live.auth)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{live.url}/admin/v1/groups", headers=live.auth).status_code == 200


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str, Path], str]]:
    """Start Prometheus scraping a target every second; yields start(target, token file)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(target: str, token_file: Path) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(  # YAML is a superset of JSON
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "volact",
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(token_file),
                            },
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2.0).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError((tmp_path / "prometheus.log").read_text())
            time.sleep(0.1)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=READY_TIMEOUT)


def query(prometheus_url: str, expression: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expression})
    answer.raise_for_status()
    data = answer.json()
    assert data["status"] == "success", data
    return list(data["data"]["result"])


def poll(prometheus_url: str, expression: str, expected: str) -> list[dict[str, object]]:
    """Query until the series has the expected value (Prometheus scrapes every second)."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    while True:
        result = query(prometheus_url, expression)
        if result and all(item["value"][1] == expected for item in result):  # type: ignore[index]
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression}: {result}, expected {expected}")
        time.sleep(0.2)


def test_a_real_prometheus_scrapes_the_host(
    live_admin: Callable[..., LiveAdmin],
    prometheus: Callable[[str, Path], str],
) -> None:
    live = live_admin()
    now = int(time.time())
    for n in range(3):
        answer = httpx.post(f"{live.served.url}/v1/activate", json=body(n, now))
        assert answer.json()["error"]["code"] == "count_insufficient"
    target = live.url.removeprefix("http://")
    url = prometheus(target, token_path(live.served.directory))
    poll(url, 'up{job="volact"}', "1")
    series = poll(url, f'volact_group_count{{group="{GROUP}"}}', "3")
    assert series[0]["metric"]["instance"] == target  # type: ignore[index]
    poll(url, f'volact_group_threshold{{group="{GROUP}"}}', "5")
    poll(url, 'volact_requests_total{outcome="count_insufficient"}', "3")
    poll(url, "volact_request_duration_seconds_count", "3")
    poll(url, f'volact_known_clients{{group="{GROUP}"}}', "3")
    # A store batch per request at most, and the host's start-up event before them.
    batches = query(url, "volact_store_batch_size_count")
    assert batches and float(batches[0]["value"][1]) >= 1  # type: ignore[index]
    assert query(url, "volact_certificate_not_after_seconds > time()")


def admin_urls(served: ServedHost) -> list[str]:
    log = served.stderr_path.read_text(encoding="utf-8")
    return [
        json.loads(line)["url"]
        for line in log.splitlines()
        if line.startswith("{") and json.loads(line).get("message") == "admin listening"
    ]


def test_admin_bind_exposes_it_and_no_admin_starts_none(
    live_admin: Callable[..., LiveAdmin], serve_host: Callable[..., ServedHost]
) -> None:
    exposed = live_admin("--admin-bind", "0.0.0.0")
    assert admin_urls(exposed.served) == [exposed.url.replace("127.0.0.1", "0.0.0.0")]
    exposed.served.stop()
    port = free_port()
    served = serve_host(exposed.served.directory, "--admin-port", str(port), "--no-admin")
    assert httpx.get(f"{served.url}/v1/health").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/admin/v1/openapi.json")


def test_a_host_without_an_admin_token_serves_and_says_so(
    host: CertifiedHost, serve_host: Callable[..., ServedHost]
) -> None:
    port = free_port()
    served = serve_host(host.directory, "--admin-port", str(port))
    assert httpx.get(f"{served.url}/v1/health").status_code == 200
    deadline = time.monotonic() + READY_TIMEOUT
    while "no admin token" not in served.stderr_path.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/admin/v1/openapi.json")
