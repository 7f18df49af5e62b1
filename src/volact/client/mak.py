"""MAK activation from the client: online at the vendor service, offline through files.

:func:`activate_mak_online` posts SPEC §6's activation request to the vendor service (through
the :class:`~volact.net.transport.Transport` port) and returns the verified activation.
Offline: :func:`mak_request_file` writes one machine's request, :func:`merge_mak_request_files`
merges request files (and batches) into one batch for the vendor (the proxy step), and
:func:`read_mak_response` picks this machine's entry out of the vendor's response and verifies
its ticket against the product descriptor. The vendor's refusals come back as the same typed
errors (``key_exhausted``, …).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from volact.core import offline
from volact.core.descriptor import ProductDescriptor
from volact.core.errors import BadRequest, NotFound, error_from_code
from volact.core.offline import mak_request_file
from volact.core.protocol import MAK_ACTIVATIONS_PATH, ActivationRequest
from volact.core.tickets import Activation, verify_activation
from volact.net.transport import Transport, service_url, vendor_transport

__all__ = [
    "activate_mak_online",
    "mak_request_file",
    "merge_mak_request_files",
    "read_mak_response",
]


def activate_mak_online(
    url: str,
    request: ActivationRequest,
    descriptor: ProductDescriptor,
    *,
    transport: Transport | None = None,
    now: int | None = None,
) -> Activation:
    """Activate one machine with a MAK at the vendor service (``descriptor.activation_url``).

    Returns the activation after verifying the ticket offline against ``descriptor`` (root
    signature, product, CMID, fingerprint and nonce). Raises the vendor's typed error
    (``key_exhausted``, ``invalid_key``, ``time_skew``…), ``host_unreachable``, or
    ``invalid_ticket``.
    """
    endpoint = service_url(url, MAK_ACTIVATIONS_PATH)
    answer = (transport or vendor_transport()).post_json(endpoint, request.to_json())
    ticket = answer.get("ticket")
    if not isinstance(ticket, str):
        raise BadRequest("the vendor service's answer holds no ticket")
    return verify_activation(
        descriptor,
        ticket,
        None,
        cmid=request.cmid,
        fingerprint=request.fingerprint,
        nonce=request.nonce,
        now=now,
    )


def merge_mak_request_files(sources: Iterable[str | bytes]) -> str:
    """Merge request files and batch files into one batch file (``volact-mak-batch``).

    Each machine (CMID and fingerprint) appears once, with its newest request. Raises
    ``bad_request`` naming the file (by position) that is not a MAK request or batch.
    """
    requests: list[ActivationRequest] = []
    for position, source in enumerate(sources, 1):
        try:
            requests.extend(offline.read_mak_requests(source))
        except BadRequest as error:
            error.message = f"file {position}: {error.message}"
            raise
    if not requests:
        raise BadRequest("no request files to merge")
    merged = offline.merge_mak_requests(requests)
    if len(merged) > offline.MAX_BATCH_ENTRIES:
        raise BadRequest(
            f"{len(merged)} machines are more than one batch holds ({offline.MAX_BATCH_ENTRIES}); "
            "split them into several batches"
        )
    return offline.mak_batch_file(merged)


def read_mak_response(
    source: str | bytes | dict[str, Any],
    descriptor: ProductDescriptor,
    *,
    cmid: str,
    fingerprint: str,
    nonce: str | None = None,
    now: int | None = None,
) -> Activation:
    """This machine's activation out of a vendor's MAK response file, verified (with ``now``,
    the client's clock: not issued more than 4 hours in its future).

    The entry is found by CMID and fingerprint. An entry holding an error raises it as the
    typed error (``key_exhausted``…); no entry raises ``not_found``; a ticket that does not
    verify (another vendor, another machine, another request's nonce) raises
    ``invalid_ticket`` or ``invalid_host_certificate``.
    """
    _, entries = offline.read_mak_response(source)
    entry = next(
        (item for item in entries if item.cmid == cmid and item.fingerprint == fingerprint), None
    )
    if entry is None:
        raise NotFound(
            f"the response has no entry for this machine (CMID {cmid}); was its request file "
            "in the batch?",
            {"cmid": cmid},
        )
    if entry.ticket is None:
        error = entry.error or {}
        raise error_from_code(
            str(error.get("code", "internal")),
            f"the vendor refused this machine: {error.get('message', '')}",
            error.get("details") or {},
        )
    return verify_activation(
        descriptor, entry.ticket, None, cmid=cmid, fingerprint=fingerprint, nonce=nonce, now=now
    )
