"""The vendor store on PostgreSQL: the CLI flow, the key limits across processes, and a real
`volact vendor serve --db postgresql://…`.

The server is the test server of tests/scaleout/postgres.py; every test gets a fresh schema,
dropped afterwards. These tests never skip: without PostgreSQL they fail.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.authority.helpers import (
    GROUP,
    PRODUCT,
    STARTUP_TIMEOUT,
    VOLACT,
    assert_one_line_error,
    invoke,
    mak_request,
    make_host,
    run,
    volact_env,
)
from tests.ports import free_port
from tests.scaleout.postgres import admin_connection, fresh_schema
from volact.authority.operations import VIA_ONLINE, Vendor
from volact.authority.store import VendorStore
from volact.core import offline
from volact.core.errors import VolactError
from volact.host import certification
from volact.host.identity import HostFiles
from volact.sql import migrations

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture
def vendor_dir(tmp_path: Path, db_url: str) -> Path:
    """A vendor initialised on PostgreSQL, with one product and its group."""
    path = tmp_path / "vendor"
    with Vendor.init(path, db=db_url, vendor_id="acme", vendor_name="Acme") as vendor:
        vendor.add_product(PRODUCT, name="Writer 2026", group=GROUP)
    return path


def host_request(tmp_path: Path, key_text: str, name: str) -> offline.HostActivationRequest:
    files: HostFiles = make_host(tmp_path / name, key_text)
    request = certification.make_host_request(files, now=int(time.time()))
    return offline.read_host_request(request.to_file())


def race(workers: Sequence[Callable[[], Any]]) -> tuple[int, list[str]]:
    """Run every worker in its own thread at once; (successes, error codes)."""
    barrier = threading.Barrier(len(workers))
    codes: list[str] = []
    ok: list[int] = []
    lock = threading.Lock()

    def run_one(work: Callable[[], Any]) -> None:
        barrier.wait(timeout=30)
        try:
            work()
        except VolactError as exc:
            with lock:
                codes.append(exc.code)
        else:
            with lock:
                ok.append(1)

    threads = [threading.Thread(target=run_one, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return len(ok), codes


def test_cli_flow_on_postgres(tmp_path: Path, db_url: str) -> None:
    vendor_path = str(tmp_path / "vendor")
    common = ("--dir", vendor_path, "--db", db_url)
    invoke("vendor", "init", "--id", "acme", "--name", "Acme", *common)
    # No vendor.db: the store is in PostgreSQL, the directory holds the root key only.
    assert not (tmp_path / "vendor" / "vendor.db").exists()
    assert list((tmp_path / "vendor" / "root-keys").iterdir())
    again = invoke("vendor", "init", "--id", "acme", *common, check=False)
    assert_one_line_error(again, "bad_request")

    invoke("vendor", "product", "add", PRODUCT, "--name", "Writer", "--group", GROUP, *common)
    invoke("vendor", "group", "set", GROUP, "--renewal-max", "30d", *common)
    assert GROUP in invoke("vendor", "group", "list", *common).stdout
    assert PRODUCT in invoke("vendor", "product", "list", *common).stdout
    key = invoke("vendor", "key", "host", "--customer", "Contoso", "--groups", GROUP, *common)
    key_text = key.stdout.strip()

    request_file = tmp_path / "host.req"
    files = make_host(tmp_path / "host", key_text)
    request = certification.write_host_request_file(files, now=int(time.time()))
    request_file.write_text(request.to_file())
    response = tmp_path / "host.resp"
    invoke("vendor", "fulfil", str(request_file), "-o", str(response), *common)
    assert response.stat().st_size > 0
    shown = invoke("vendor", "key", "show", key_text, "--json", *common).stdout
    assert '"used": 1' in shown
    # The same request is answered once, also on PostgreSQL.
    replay = invoke("vendor", "fulfil", str(request_file), *common, check=False)
    assert_one_line_error(replay, "replayed_request")

    # Without --db, the directory has no vendor.db: a clear error, no traceback.
    missing = invoke("vendor", "key", "list", "--dir", vendor_path, check=False)
    assert_one_line_error(missing, "not_found")


def test_unreachable_database_is_a_storage_error(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://volact:s3cret-pw@127.0.0.1:{port}/nothing?connect_timeout=2"
    done = invoke("vendor", "key", "list", "--dir", str(tmp_path), "--db", url, check=False)
    assert_one_line_error(done, "not_found")  # No root-keys/ here: found before connecting.
    (tmp_path / "root-keys").mkdir()
    done = invoke("vendor", "key", "list", "--dir", str(tmp_path), "--db", url, check=False)
    message = assert_one_line_error(done, "storage_error")
    assert "s3cret-pw" not in message and "s3cret-pw" not in done.stdout
    with pytest.raises(VolactError) as raised:
        VendorStore(url)
    assert raised.value.code == "storage_error"
    assert "s3cret-pw" not in str(raised.value)


def test_schema_is_versioned(db_url: str, vendor_dir: Path) -> None:
    with admin_connection() as conn:
        schema = db_url.split("search_path%3D", 1)[1].split("&", 1)[0]
        row = conn.execute(f'SELECT version FROM "{schema}".vendor_schema_version').fetchone()
    assert row == (migrations.latest_version("vendor", "postgresql"),)
    # Opening again runs no migration twice.
    with Vendor.open(vendor_dir, db=db_url) as vendor:
        assert vendor.vendor_id == "acme"


def test_host_key_limit_holds_across_two_vendor_processes(
    tmp_path: Path, db_url: str, vendor_dir: Path
) -> None:
    with Vendor.open(vendor_dir, db=db_url) as vendor:
        key_text = vendor.issue_host_key(customer="Contoso", groups=[GROUP], host_limit=6).key_text
    requests = [host_request(tmp_path, key_text, f"host-{n}") for n in range(7)]
    first = Vendor.open(vendor_dir, db=db_url)
    second = Vendor.open(vendor_dir, db=db_url)
    try:
        vendors = [first, second]
        workers = [
            (lambda r=r, v=vendors[n % 2]: v.certify_host(r, via=VIA_ONLINE))
            for n, r in enumerate(requests)
        ]
        succeeded, codes = race(workers)
        assert (succeeded, codes) == (6, ["key_exhausted"])
        assert first.find_key(key_text).used == 6
    finally:
        first.close()
        second.close()


def test_mak_count_holds_across_two_vendor_processes(db_url: str, vendor_dir: Path) -> None:
    with Vendor.open(vendor_dir, db=db_url) as vendor:
        key_text = vendor.issue_mak(PRODUCT, count=3).key_text
    first = Vendor.open(vendor_dir, db=db_url)
    second = Vendor.open(vendor_dir, db=db_url)
    try:
        vendors = [first, second]
        workers = [
            (lambda v=vendors[n % 2]: v.activate_mak(mak_request(key_text), via=VIA_ONLINE))
            for n in range(8)
        ]
        succeeded, codes = race(workers)
        assert succeeded == 3
        assert codes == ["key_exhausted"] * 5
        assert len(second.key_activations(second.find_key(key_text))) == 3
    finally:
        first.close()
        second.close()


def test_vendor_serve_on_postgres_certifies_a_host(
    tmp_path: Path, db_url: str, vendor_dir: Path
) -> None:
    with Vendor.open(vendor_dir, db=db_url) as vendor:
        key_text = vendor.issue_host_key(customer="Contoso", groups=[GROUP], host_limit=6).key_text
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                *VOLACT,
                "vendor",
                "serve",
                "--dir",
                str(vendor_dir),
                "--db",
                db_url,
                "--port",
                str(port),
                "--rate",
                "0",
            ],
            env=volact_env(),
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"vendor serve exited: {log.read_text()}"
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "vendor serve did not become ready"
            time.sleep(0.05)
        host_dir = tmp_path / "host"
        run("host", "init", "--dir", str(host_dir), "--key", key_text)
        done = run("host", "activate", "--dir", str(host_dir), "--vendor", url, check=False)
        assert done.returncode == 0, done.stderr
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    # The certification is in the shared database.
    with Vendor.open(vendor_dir, db=db_url) as vendor:
        assert vendor.find_key(key_text).used == 1


def test_a_lost_connection_fails_one_request_then_reconnects(vendor_dir: Path, db_url: str) -> None:
    with Vendor.open(vendor_dir, db=db_url) as vendor:
        assert [p.product_id for p in vendor.products()] == [PRODUCT]
        pid = vendor.store._conn.info.backend_pid
        with admin_connection() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(VolactError) as info:
            vendor.products()
        assert info.value.code == "storage_error"
        # The next request connects again, reads and writes work.
        assert [p.product_id for p in vendor.products()] == [PRODUCT]
        assert vendor.issue_gvlk(PRODUCT).serial
        assert vendor.store._conn.info.backend_pid != pid


def test_renewed_certificates_are_listed_with_their_host_on_postgres(
    tmp_path: Path, db_url: str, vendor_dir: Path
) -> None:
    """The trust lifecycle's queries on PostgreSQL: a renewed certificate is superseded with its
    host id, revoked with its host, and a revoked key is listed while it has certificates."""
    import dataclasses

    from volact.authority.operations import VIA_OFFLINE
    from volact.core.errors import RateLimited
    from volact.host import certificate_renewal

    with Vendor.open(vendor_dir, db=db_url) as vendor:
        key_text = vendor.issue_host_key(customer="Contoso", groups=[GROUP], host_limit=2).key_text

        def certify(files: HostFiles) -> str:
            request = certification.write_host_request_file(files, now=int(time.time()))
            response = vendor.certify_host(
                offline.read_host_request(request.to_file()), via=VIA_OFFLINE
            )
            installed = certification.install_host_response(
                files, response.to_file(), now=int(time.time())
            )
            return installed.cert_id

        def renew(files: HostFiles) -> str:
            request = certificate_renewal.write_renewal_request(files, now=int(time.time()))
            response = vendor.renew_host(request.to_file(), via=VIA_OFFLINE)
            installed = certification.install_host_response(
                files, response.to_file(), now=int(time.time())
            )
            return installed.cert_id

        a, b = make_host(tmp_path / "a", key_text), make_host(tmp_path / "b", key_text)
        first_a, first_b = certify(a), certify(b)
        second_a, second_b = renew(a), renew(b)
        with pytest.raises(RateLimited):
            renew(a)
        clone = make_host(tmp_path / "clone", key_text)
        clone.save_settings(dataclasses.replace(clone.settings(), host_id=a.settings().host_id))
        certify(clone)  # supersedes a's renewed certificate and the one it renewed
        listed = {entry.cert_id for entry in vendor.revocation_list(key_text).certificates}
        assert listed == {first_a, second_a}
        revoked = vendor.revoke_certificate(second_b, "host_replaced")
        assert {entry.cert_id for entry in revoked.certificates} == {
            first_a,
            second_a,
            first_b,
            second_b,
        }
        by_key, _ = vendor.revoke_host_key(key_text, "ceased")
        assert len(by_key.host_keys) == 1 and by_key.certificates == ()
