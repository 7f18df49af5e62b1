"""The host's side of certificate renewal (issue 20; the rules are
:mod:`volact.core.host_renewal`).

:func:`renew_online` signs a renewal request with the host's current key, posts it to the
vendor service (``POST /v1/host-renewals``) and installs the answer; a running host calls it by
itself once a renewal is due (:meth:`volact.host.service.HostService.renew_certificate_if_due`)
and takes the new certificate up between requests, so serving never stops.
:func:`write_renewal_request` is the offline twin (``volact host renew --offline-request
FILE``); the vendor's answer is installed like any host activation response.
"""

from __future__ import annotations

import uuid

from volact.core import host_renewal
from volact.core.errors import NotFound
from volact.core.protocol import HOST_RENEWALS_PATH
from volact.core.tickets import HostCertificate
from volact.host import certification
from volact.host.identity import HostFiles
from volact.net.transport import Transport, service_url, vendor_transport


def make_renewal_request(files: HostFiles, *, now: int) -> host_renewal.HostRenewalRequest:
    """A renewal request for the installed certificate, signed with the host's key."""
    settings = files.settings()
    request = host_renewal.HostRenewalRequest(
        request_id=str(uuid.uuid4()),
        host_id=settings.host_id,
        certificate=files.certificate_token(),
        created_at=now,
    )
    return host_renewal.sign_renewal_request(files.signing_key(), request)


def write_renewal_request(files: HostFiles, *, now: int) -> host_renewal.HostRenewalRequest:
    """An offline renewal request, remembered so that its response is accepted once."""
    request = make_renewal_request(files, now=now)
    certification.remember_request(files, request.request_id, now)
    return request


def renew_online(
    files: HostFiles,
    *,
    now: int,
    vendor_url: str | None = None,
    transport: Transport | None = None,
) -> HostCertificate:
    """Renew the installed certificate at the vendor service and install the new one."""
    url = vendor_url or files.settings().vendor_url
    if not url:
        raise NotFound(
            "host.json names no vendor service (vendor_url); renew offline "
            "(`volact host renew --offline-request FILE`)"
        )
    request = make_renewal_request(files, now=now)
    answer = (transport or vendor_transport()).post_json(
        service_url(url, HOST_RENEWALS_PATH), request.to_json()
    )
    return certification.install_host_response(
        files, answer, now=now, vendor_url=url, expected_request_id=request.request_id
    )
