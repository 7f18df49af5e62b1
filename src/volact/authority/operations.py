"""The vendor's operations: its catalogue, a clock and a random source answering requests.

:class:`Vendor` is what the ``volact vendor`` commands and the vendor service call. It is the
:class:`~volact.authority.catalogue.Catalogue` (identity, root keys, groups, products, keys),
opened or created from a vendor directory, and answers host activation requests, MAK
activation requests and offline request files. The rules live in
:mod:`volact.authority.issuance` (pure) and the file formats in :mod:`volact.core.offline`;
this module reads and writes the store around them, one write transaction (SQLite
``BEGIN IMMEDIATE``, or PostgreSQL's advisory lock) per decision, and signs with the active
root key. Nothing here knows HTTP.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from volact.authority import issuance
from volact.authority.catalogue import RandomBytes
from volact.authority.certifications import KIND_CERTIFICATION
from volact.authority.files import VendorDir
from volact.authority.records import KeyRecord
from volact.authority.revocations import TrustLifecycle
from volact.authority.store import VendorStore, is_postgres_url, sqlite_path
from volact.clock import Clock, system_clock
from volact.core import host_renewal, offline, validate
from volact.core.errors import (
    ConfigurationError,
    InvalidKey,
    NotFound,
    ReplayedRequest,
    TimeSkew,
    VolactError,
)
from volact.core.keys import Channel, ProductKey, parse_key
from volact.core.keys import require_channel as require_key_channel
from volact.core.policy import CLOCK_SKEW_TOLERANCE
from volact.core.protocol import ActivationRequest
from volact.core.tickets import issue_ticket

if TYPE_CHECKING:
    from volact.authority.hsm import TokenChoice

VIA_ONLINE = "online"
VIA_OFFLINE = "offline"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return slug[:64]


@dataclass(frozen=True)
class MAKActivation:
    """A MAK activation answered: the ticket token and the MAK's use after it."""

    ticket: str
    machines: int
    limit: int
    new_machine: bool


@dataclass
class FulfilResult:
    """What ``volact vendor fulfil`` made of one request file."""

    kind: str  # "host" or "mak"
    response: str  # the response file's text
    issued: int = 0
    refused: int = 0
    notes: list[str] = field(default_factory=list)


class Vendor(TrustLifecycle):
    """One vendor directory, open: its catalogue, answering requests. Thread-safe: operations
    are serialised by a lock."""

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        db: str | None = None,
        clock: Clock = system_clock,
        random_bytes: RandomBytes = os.urandom,
    ) -> Vendor:
        """Open an initialised vendor (``not_found`` if it was never initialised).

        ``db``: the store's URL (``sqlite:///PATH`` or ``postgresql://…``); by default the
        directory's ``vendor.db``. The directory always holds the root private keys.
        """
        directory = VendorDir(path)
        if db is None:
            directory.require()
            location: Path | str = directory.database
        elif is_postgres_url(db):
            directory.require_root_keys()
            location = db
        else:
            location = sqlite_path(db)
            if not location.exists():
                raise NotFound(f"no vendor database {location}; run `volact vendor init --db`")
            directory.require_root_keys()
        store = VendorStore(location)
        if not store.initialised():
            store.close()
            raise NotFound(
                f"the vendor database {store.label} is not initialised; run `volact vendor init`"
            )
        return cls(directory, store, clock=clock, random_bytes=random_bytes)

    @classmethod
    def init(
        cls,
        path: Path | str,
        *,
        db: str | None = None,
        vendor_id: str | None = None,
        vendor_name: str | None = None,
        clock: Clock = system_clock,
        random_bytes: RandomBytes = os.urandom,
        hsm: TokenChoice | None = None,
    ) -> Vendor:
        """Create a vendor directory: the store, the vendor's identity and a first root key.

        ``hsm``: generate the root key in that PKCS#11 token (:mod:`volact.authority.hsm`)
        instead of a file.

        The vendor id defaults to the name made into an id, else ``vendor-<8 hex digits>``. It
        is part of every GVLK, so it can never change. ``db`` as for :meth:`open`.
        """
        directory = VendorDir(path)
        postgres = db is not None and is_postgres_url(db)
        database = directory.database if db is None or postgres else sqlite_path(db)
        if not postgres and database.exists():
            raise ConfigurationError(
                f"{database} holds a vendor already; use another --dir or --db to start anew"
            )
        if vendor_id is None:
            vendor_id = _slug(vendor_name) if vendor_name else ""
            if not vendor_id:
                vendor_id = f"vendor-{random_bytes(4).hex()}"
        validate.check_identifier(vendor_id, "vendor_id")
        name = vendor_name if vendor_name is not None else vendor_id
        validate.string({"vendor_name": name}, "vendor_name", max_len=200)
        if postgres:
            assert db is not None
            store = VendorStore(db)
            if store.initialised():
                store.close()
                raise ConfigurationError(
                    f"the database {store.label} holds a vendor already; use another "
                    "database or schema to start anew"
                )
            try:
                directory.create_keys_only()
            except BaseException:
                store.close()
                raise
        else:
            directory.create(database)
            store = VendorStore(database)
        vendor = cls(directory, store, clock=clock, random_bytes=random_bytes)
        try:
            with vendor.lock, vendor.store.transaction():
                if vendor.store.initialised():  # Another process won the race.
                    raise ConfigurationError(f"the database {store.label} holds a vendor already")
                vendor.store.set_identity(vendor_id, name, clock())
                vendor._add_root_key(hsm=hsm)
        except BaseException:
            vendor.close()
            raise
        return vendor

    def close(self) -> None:
        self.store.close()
        if self._tokens is not None:
            self._tokens.close()

    def __enter__(self) -> Vendor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _issued_key(self, text: str, channel: Channel) -> tuple[ProductKey, KeyRecord]:
        key = parse_key(text)
        require_key_channel(key, channel)
        record = self.store.key(key.serial)
        if record is None or record.channel != channel.value:
            raise InvalidKey(
                f"this {channel.label} was not issued by vendor {self.vendor_id!r}; check the key",
                {"serial": key.serial},
            )
        return key, record

    # --- host certification --------------------------------------------------------------

    def _proved_host_key(self, request: offline.HostActivationRequest) -> KeyRecord:
        """The host key a request names by serial, if the request proves knowing it.

        An unknown serial and a proof that does not match get the same answer, so a request
        tells a stranger nothing about which serials exist.
        """
        record = self.store.key(request.key_serial)
        if (
            record is None
            or record.channel != Channel.HOST.value
            or not offline.check_host_proof(request, record.key_text)
        ):
            raise InvalidKey(
                f"this host key was not issued by vendor {self.vendor_id!r}, or the request does "
                "not prove it: check the key on the host (`volact host init`) and make a new "
                "request",
                {"serial": request.key_serial},
            )
        return record

    def certify_host(
        self,
        request: offline.HostActivationRequest,
        *,
        via: str,
        address: str | None = None,
    ) -> offline.HostActivationResponse:
        """Answer a verified host activation request with a signed response (rules 2 and 3)."""
        with self.lock, self.store.transaction():
            record = self._proved_host_key(request)
            if self.store.request_seen(request.request_id):
                raise ReplayedRequest(
                    "this host activation request was answered already; a request is used once. "
                    "Make a new request on the host (`volact host activate`)",
                    {"request_id": request.request_id},
                )
            self._require_key_not_revoked(record.serial)
            now = self.clock()
            certifications = self.store.certifications_of_host(record.serial, request.host_id)
            live = self.store.live_certifications(record.serial, now)
            usage = issuance.HostUsage(
                serial=record.serial,
                host_limit=record.activation_limit or issuance.DEFAULT_HOST_LIMIT,
                hosts=record.used,
                host_known=certifications > 0,
                certifications_of_host=certifications,
                live_of_other_hosts=sum(1 for row in live if row["host_id"] != request.host_id),
            )
            issuance.check_host_limits(usage, request.host_id)
            response, cert_id = self._issue_host_certificate(
                record,
                request_id=request.request_id,
                host_id=request.host_id,
                host_key=request.host_key,
                machine=request.machine,
                via=via,
                address=address,
                now=now,
                kind=KIND_CERTIFICATION,
                new_host=certifications == 0,
            )
            # Rule 1 of volact.authority.revocations: the host id's previous certificate ends.
            if self._supersede(record.serial, request.host_id, cert_id, now):
                self._sign_revocation_list(record.serial, now)
        return response

    # --- MAK -----------------------------------------------------------------------------

    def activate_mak(
        self,
        request: ActivationRequest,
        *,
        via: str,
        address: str | None = None,
    ) -> MAKActivation:
        """Answer one MAK activation request with a root-signed ticket (rule 4).

        Online (``via="online"``) the client's clock must be within 4 hours of the vendor's, as
        a host requires; an offline request was written days before it is answered, so its
        clock is not checked.
        """
        now = self.clock()
        if via == VIA_ONLINE and abs(request.client_time - now) > CLOCK_SKEW_TOLERANCE:
            raise TimeSkew(
                "the machine's clock differs from the vendor's by more than 4 hours; fix the "
                "clock (NTP) and activate again",
                {"client_time": request.client_time, "vendor_time": now},
            )
        with self.lock, self.store.transaction():
            _, record = self._issued_key(request.key, Channel.MAK)
            product = self.product(request.product)
            if record.product_id != product.product_id:
                raise InvalidKey(
                    f"this MAK is for product {record.product_id!r}, not {product.product_id!r}",
                    {"product": request.product},
                )
            known = self.store.mak_machine_known(record.serial, request.cmid, request.fingerprint)
            limit = record.activation_limit or 0
            issuance.check_mak_limit(issuance.MAKUsage(record.serial, limit, record.used, known))
            machines = record.used if known else record.used + 1
            _, root = self.active_root_key()
            ticket = issue_ticket(
                root,
                issuance.build_mak_ticket(
                    vendor_id=self.vendor_id,
                    request=request,
                    group=product.group_id,
                    policy=self.group(product.group_id).policy,
                    validity=record.validity,
                    machines=machines,
                    now=now,
                ),
            )
            self.store.record_mak_activation(
                serial=record.serial,
                cmid=request.cmid,
                fingerprint=request.fingerprint,
                product_id=product.product_id,
                machine=request.machine,
                via=via,
                address=address,
                now=now,
                new_machine=not known,
            )
        return MAKActivation(ticket.token, machines, limit, not known)

    # --- offline -------------------------------------------------------------------------

    def fulfil(self, source: str | bytes) -> FulfilResult:
        """Answer a request file: a host activation request, a MAK request or a MAK batch.

        A host request or a single MAK request that is refused raises its error. In a batch,
        each machine is answered on its own (a ticket or an error entry); the batch raises only
        if no machine at all was activated.
        """
        if _is_renewal(source):
            response = self.renew_host(source, via=VIA_OFFLINE)
            return FulfilResult("host", response.to_file(), issued=1)
        data = offline.read_request_file(source)
        if data["format"] == offline.HOST_REQUEST_FORMAT:
            host_request = offline.read_host_request(data)
            response = self.certify_host(host_request, via=VIA_OFFLINE)
            return FulfilResult("host", response.to_file(), issued=1)
        requests = offline.read_mak_requests(data)
        entries: list[offline.MAKResponseEntry] = []
        result = FulfilResult("mak", "")
        first_error: VolactError | None = None
        for position, request in enumerate(requests, 1):
            try:
                activation = self.activate_mak(request, via=VIA_OFFLINE)
            except VolactError as error:
                if data["format"] == offline.MAK_REQUEST_FORMAT:
                    raise
                first_error = first_error or error
                result.refused += 1
                result.notes.append(
                    f"request {position} ({request.machine}, CMID {request.cmid}): "
                    f"{error.code}: {error.message}"
                )
                entries.append(
                    offline.MAKResponseEntry(
                        request.cmid, request.fingerprint, error=error.to_dict()
                    )
                )
                continue
            result.issued += 1
            entries.append(
                offline.MAKResponseEntry(
                    request.cmid, request.fingerprint, ticket=activation.ticket
                )
            )
        if result.issued == 0 and first_error is not None:
            first_error.message = (
                f"no machine in the batch was activated; first: {first_error.message}"
            )
            raise first_error
        result.response = offline.mak_response_file(self.vendor_id, self.clock(), entries)
        return result


def _is_renewal(source: str | bytes) -> bool:
    """Whether a file given to ``fulfil`` is a host renewal request (issue 20)."""
    try:
        host_renewal.parse_renewal_file(source)
    except VolactError:
        return False
    return True
