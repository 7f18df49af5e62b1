"""MAK activation: online through a real vendor service, offline for one machine and in a batch
through a proxy, with every ticket verified as the client verifies it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.authority.helpers import (
    PRODUCT,
    Server,
    World,
    assert_one_line_error,
    invoke,
    issue_host_key,
    issue_mak,
    mak_request,
    make_world,
    run,
)
from volact.authority.operations import VIA_ONLINE
from volact.client import mak
from volact.core import offline
from volact.core.errors import (
    BadRequest,
    InvalidKey,
    InvalidTicket,
    KeyExhausted,
    NotFound,
    TimeSkew,
)
from volact.core.tickets import verify_activation


def test_mak_with_count_three_activates_three_machines_online(server: Server) -> None:
    key = issue_mak(server.world, count=3)
    with server.world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
    requests = [mak_request(key) for _ in range(4)]
    for request in requests[:3]:
        activation = mak.activate_mak_online(server.url, request, descriptor)
        assert activation.ticket.issuer == "vendor" and activation.ticket.valid_until is None
        assert activation.certificate is None
        verify_activation(
            descriptor,
            activation.ticket.token,
            None,
            cmid=request.cmid,
            fingerprint=request.fingerprint,
            nonce=request.nonce,
        )
    # The same machine again gets a fresh ticket without using a count.
    again = mak_request(key, cmid=requests[0].cmid, fingerprint=requests[0].fingerprint)
    assert mak.activate_mak_online(server.url, again, descriptor).ticket.count == 3
    with pytest.raises(KeyExhausted, match="all of its 3 machines"):
        mak.activate_mak_online(server.url, requests[3], descriptor)
    with server.world.open() as vendor:
        record = vendor.find_key(key)
        assert record.used == 3
        assert [a["issues"] for a in vendor.key_activations(record)] == [2, 1, 1]
    # The refusal has the one error shape with its status.
    answer = httpx.post(server.url + "/v1/mak-activations", json=requests[3].to_json())
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "key_exhausted"
    assert set(answer.json()) == {"ok", "error"}


def test_online_mak_refusals(server: Server) -> None:
    key = issue_mak(server.world, count=5)
    with server.world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
        paint_mak = vendor.issue_mak("paint-2026", count=1).key_text
    host_key = issue_host_key(server.world)
    with pytest.raises(InvalidKey, match="this is a host key, not a MAK"):
        mak.activate_mak_online(server.url, mak_request(host_key), descriptor)
    with pytest.raises(InvalidKey, match="is for product 'paint-2026'"):
        mak.activate_mak_online(server.url, mak_request(paint_mak), descriptor)
    with pytest.raises(TimeSkew):
        mak.activate_mak_online(
            server.url, mak_request(key, now=int(time.time()) - 86400), descriptor
        )
    unknown = mak_request(key)
    body = {**unknown.to_json(), "product": "nope"}
    answer = httpx.post(server.url + "/v1/mak-activations", json=body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "product_unknown")
    with server.world.open() as vendor:
        assert vendor.find_key(key).used == 0


def test_mak_validity_sets_valid_until(world: World) -> None:
    key = issue_mak(world, count=1, validity=180 * 86400)
    request = mak_request(key)
    with world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
        activation = vendor.activate_mak(request, via=VIA_ONLINE)
    ticket = verify_activation(
        descriptor, activation.ticket, None, cmid=request.cmid, fingerprint=request.fingerprint
    ).ticket
    assert ticket.valid_until == ticket.issued_at + 180 * 86400


def test_same_cmid_with_another_fingerprint_counts_as_another_machine(world: World) -> None:
    key = issue_mak(world, count=1)
    first = mak_request(key)
    clone = mak_request(key, cmid=first.cmid)
    with world.open() as vendor:
        vendor.activate_mak(first, via=VIA_ONLINE)
        with pytest.raises(KeyExhausted):
            vendor.activate_mak(clone, via=VIA_ONLINE)


def test_offline_single_machine_request(world: World, tmp_path: Path) -> None:
    key = issue_mak(world, count=2)
    request = mak_request(key, now=int(time.time()) - 10 * 86400)  # written days ago: no skew check
    (tmp_path / "one.json").write_text(mak.mak_request_file(request))
    done = run("vendor", "fulfil", str(tmp_path / "one.json"), "--dir", str(world.path))
    assert "1 machine(s) activated, 0 refused" in done.stderr
    with world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
    activation = mak.read_mak_response(
        done.stdout,
        descriptor,
        cmid=request.cmid,
        fingerprint=request.fingerprint,
        nonce=request.nonce,
    )
    assert activation.ticket.cmid == request.cmid
    # A single request that is refused is one line, not a response.
    (tmp_path / "bad.json").write_text(mak.mak_request_file(mak_request(issue_host_key(world))))
    bad = invoke(
        "vendor", "fulfil", str(tmp_path / "bad.json"), "--dir", str(world.path), check=False
    )
    assert_one_line_error(bad, "invalid_key")


def test_offline_batch_through_a_proxy(world: World, tmp_path: Path) -> None:
    """Five machines write request files; an admin merges them (with a batch and a duplicate)
    into one batch; the vendor answers all in one response; each machine takes its own."""
    key = issue_mak(world, count=4)
    machines = [mak_request(key) for _ in range(5)]
    files = [mak.mak_request_file(request) for request in machines]
    duplicate = mak.mak_request_file(machines[0])
    earlier_batch = offline.mak_batch_file(machines[3:])
    batch = mak.merge_mak_request_files([*files[:3], duplicate, earlier_batch])
    assert len(json.loads(batch)["requests"]) == 5
    (tmp_path / "batch.json").write_text(batch)

    done = run("vendor", "fulfil", str(tmp_path / "batch.json"), "--dir", str(world.path))
    assert "4 machine(s) activated, 1 refused" in done.stderr
    assert "key_exhausted" in done.stderr
    (tmp_path / "response.json").write_text(done.stdout)
    with world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
    response_text = (tmp_path / "response.json").read_text()
    for request in machines[:4]:
        activation = mak.read_mak_response(
            response_text,
            descriptor,
            cmid=request.cmid,
            fingerprint=request.fingerprint,
            nonce=request.nonce,
        )
        verify_activation(
            descriptor,
            activation.ticket.token,
            None,
            cmid=request.cmid,
            fingerprint=request.fingerprint,
        )
    with pytest.raises(KeyExhausted, match="the vendor refused this machine"):
        mak.read_mak_response(
            response_text, descriptor, cmid=machines[4].cmid, fingerprint=machines[4].fingerprint
        )
    stranger = mak_request(key)
    with pytest.raises(NotFound):
        mak.read_mak_response(
            response_text, descriptor, cmid=stranger.cmid, fingerprint=stranger.fingerprint
        )
    # Another machine's ticket is not this machine's, and another request's nonce is refused.
    entries = json.loads(response_text)["entries"]
    entries[0]["ticket"], entries[1]["ticket"] = entries[1]["ticket"], entries[0]["ticket"]
    swapped = json.dumps({**json.loads(response_text), "entries": entries})
    with pytest.raises(InvalidTicket, match="another machine"):
        mak.read_mak_response(
            swapped, descriptor, cmid=machines[0].cmid, fingerprint=machines[0].fingerprint
        )
    with pytest.raises(InvalidTicket, match="nonce"):
        mak.read_mak_response(
            response_text,
            descriptor,
            cmid=machines[0].cmid,
            fingerprint=machines[0].fingerprint,
            nonce=machines[1].nonce,
        )
    # Answering the batch again re-issues for the known machines and uses no count.
    again = invoke("vendor", "fulfil", str(tmp_path / "batch.json"), "--dir", str(world.path))
    assert "4 machine(s) activated, 1 refused" in again.stderr
    with world.open() as vendor:
        assert vendor.find_key(key).used == 4


def test_batch_that_activates_nothing_is_an_error(world: World, tmp_path: Path) -> None:
    key = issue_mak(world, count=1)
    with world.open() as vendor:
        vendor.activate_mak(mak_request(key), via=VIA_ONLINE)
    batch = mak.merge_mak_request_files([mak.mak_request_file(mak_request(key)) for _ in range(2)])
    (tmp_path / "batch.json").write_text(batch)
    done = invoke(
        "vendor", "fulfil", str(tmp_path / "batch.json"), "--dir", str(world.path), check=False
    )
    assert "no machine in the batch was activated" in assert_one_line_error(done, "key_exhausted")
    assert done.stdout == ""


def test_mak_ticket_does_not_verify_under_another_vendor(world: World, tmp_path: Path) -> None:
    key = issue_mak(world, count=1)
    request = mak_request(key)
    with world.open() as vendor:
        ticket = vendor.activate_mak(request, via=VIA_ONLINE).ticket
    other = make_world(tmp_path / "b", vendor_id="acme")
    with other.open() as vendor_b:
        descriptor_b = vendor_b.descriptor(PRODUCT)
    # Vendor B's descriptor does not list vendor A's root key: the ticket is not its vendor's.
    with pytest.raises(InvalidTicket):
        verify_activation(
            descriptor_b, ticket, None, cmid=request.cmid, fingerprint=request.fingerprint
        )


def test_merge_refuses_files_that_are_not_mak_requests(world: World) -> None:
    with pytest.raises(BadRequest, match="file 2: this file is a host activation request file"):
        mak.merge_mak_request_files(
            [
                mak.mak_request_file(mak_request(issue_mak(world, count=1))),
                '{"format": "volact-host-activation-request", "v": 1, "token": "x"}',
            ]
        )
    with pytest.raises(BadRequest, match="no request files"):
        mak.merge_mak_request_files([])


def test_concurrent_activations_never_exceed_the_count(server: Server, tmp_path: Path) -> None:
    """Eight machines at once through the service, plus a batch answered by another process at
    the same time: the count of five holds (each check and its write are one transaction)."""
    from concurrent.futures import ThreadPoolExecutor

    key = issue_mak(server.world, count=5)
    with server.world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
    batch = mak.merge_mak_request_files([mak.mak_request_file(mak_request(key)) for _ in range(4)])
    (tmp_path / "batch.json").write_text(batch)

    def online(_: int) -> str:
        try:
            mak.activate_mak_online(server.url, mak_request(key), descriptor)
        except KeyExhausted:
            return "exhausted"
        return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        offline_run = pool.submit(
            run, "vendor", "fulfil", str(tmp_path / "batch.json"), "--dir", str(server.world.path),
            check=False,
        )  # fmt: skip
        outcomes = list(pool.map(online, range(8)))
        fulfilled = offline_run.result()
    issued_offline = json.loads(fulfilled.stdout)["entries"] if fulfilled.returncode == 0 else []
    tickets_offline = sum(1 for entry in issued_offline if "ticket" in entry)
    assert outcomes.count("ok") + tickets_offline == 5
    with server.world.open() as vendor:
        assert vendor.find_key(key).used == 5
