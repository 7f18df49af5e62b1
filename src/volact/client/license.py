"""The ``License`` SDK: what a vendor's app (and ``volact client``) calls (SPEC §8).

A :class:`License` is one product (its signed descriptor) on this machine (a state directory).
It carries out what the pure client machine (:mod:`volact.core.client_machine`) decides:

* :meth:`License.status` reads the product's state file, verifies the stored activation's whole
  chain offline (root → host certificate → ticket) and computes the state at the clock's now. It
  writes nothing (except once after a disk image was cloned) and never touches the network.
* :meth:`License.install_key`, :meth:`License.rearm` and the settings change the state file
  under the state directory's lock.
* :meth:`License.activate`, :meth:`License.renew`, :meth:`License.diagnose` and the offline MAK
  methods hand over to :mod:`volact.client.activation` (discovery, asking hosts or the vendor
  service, verifying, recording) and :mod:`volact.client.diagnosis`.
* The renewal loop (:mod:`volact.client.renewal`) calls :meth:`License.renew` whenever
  :func:`~volact.core.client_machine.next_deadline` says so.

Everything with an effect is injected: the transport, the DNS lookups, the clock (Unix seconds)
and the random source, so that tests and the simulator can run the real code.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volact.client import identity, next_steps, revocations
from volact.client.settings import installed_products, resolve_state_dir, update_settings
from volact.client.state import MachineSettings, ProductState, StateDir
from volact.client.status import LicenseStatus, to_datetime
from volact.clock import Clock, system_clock
from volact.core import client_machine as machine
from volact.core.descriptor import (
    DESCRIPTOR_FORMAT,
    FORMAT_VERSION,
    ProductDescriptor,
    load_descriptor,
)
from volact.core.errors import (
    BadRequest,
    InvalidHostCertificate,
    InvalidTicket,
    NotInstalled,
    StorageError,
    VolactError,
)
from volact.core.tickets import verify_activation
from volact.fileio import read_bytes

if TYPE_CHECKING:
    import asyncio

    from volact.client.activation import Attempt, DNSLookups
    from volact.client.diagnosis import Diagnosis
    from volact.client.renewal import RenewalLoop, RenewalThread
    from volact.net.transport import Transport

# Attempt, DNSLookups and Diagnosis are in volact.client.activation and .diagnosis, imported
# by the methods that need them: status() never does (issue 18: an app's start-up).
__all__ = ["License", "installed_products", "update_settings"]


MAX_DESCRIPTOR_BYTES = 64 * 1024


def _read_descriptor(source: Any) -> ProductDescriptor:
    if isinstance(source, ProductDescriptor):
        return source
    if isinstance(source, (dict, bytes)):
        return load_descriptor(source)
    if isinstance(source, (str, os.PathLike)):
        data = read_bytes(Path(source), what="product descriptor", limit=MAX_DESCRIPTOR_BYTES)
        return load_descriptor(data)
    raise TypeError("a descriptor is a path, file bytes, a parsed JSON object or a descriptor")


def _descriptor_from_token(token: str) -> ProductDescriptor:
    return load_descriptor({"format": DESCRIPTOR_FORMAT, "v": FORMAT_VERSION, "token": token})


class License:
    """One product on this machine: its status, activation, renewal and settings.

    Build one with :meth:`from_descriptor` (an app, with the descriptor it ships) or
    :meth:`open` (a tool, with the descriptor installed with the key). Thread-safe: the
    renewal thread and the app may call it at the same time; several processes may share a
    state directory (writes are serialised by a file lock).
    """

    def __init__(
        self,
        descriptor: ProductDescriptor,
        state_dir: str | os.PathLike[str],
        *,
        transport: Transport | None = None,
        dns: DNSLookups | None = None,
        clock: Clock | None = None,
        random: identity.RandomSource | None = None,
        machine_id: str | identity.IdentitySource | None = None,
        dns_timeout: float = 3.0,
    ) -> None:
        if not descriptor.token:
            raise BadRequest("the product descriptor is not signed")
        self.descriptor = descriptor
        self.state = StateDir(state_dir)
        self.clock: Clock = clock or system_clock
        self._random = random  # the OS's (SystemRandom) when None, made on first use
        self._transport = transport
        self._dns = dns
        self._dns_timeout = dns_timeout
        # The machine's identity: the OS's, unless the app's own code passed one (text or an
        # identity source); never from the environment (see volact.client.identity).
        self.fingerprint = identity.fingerprint(
            descriptor.product, identity.resolve_identity(machine_id)
        )
        self._lock = threading.RLock()

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_descriptor(
        cls,
        descriptor: str | os.PathLike[str] | bytes | Mapping[str, Any] | ProductDescriptor,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        transport: Transport | None = None,
        dns: DNSLookups | None = None,
        clock: Clock | None = None,
        random: identity.RandomSource | None = None,
        machine_id: str | identity.IdentitySource | None = None,
    ) -> License:
        """The license of the product ``descriptor`` describes (a file path, the file's bytes,
        its parsed JSON or a loaded descriptor), kept in ``state_dir`` (default: the
        ``VOLACT_STATE_DIR`` variable, else the machine-wide folder of :mod:`volact.paths`).
        ``machine_id``: see :mod:`volact.client.identity` (default: the OS's identity). Raises
        ``bad_request`` for a descriptor that does not verify."""
        return cls(
            _read_descriptor(descriptor),
            resolve_state_dir(state_dir),
            transport=transport,
            dns=dns,
            clock=clock,
            random=random,
            machine_id=machine_id,
        )

    @classmethod
    def open(
        cls,
        product: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> License:
        """The license of an installed product, with the descriptor installed with its key.

        Without ``product``, the one product installed. Raises ``not_installed`` when there is
        none (or not the one named) and ``bad_request`` when several are installed and none is
        named.
        """
        directory = resolve_state_dir(state_dir)
        state = StateDir(directory)
        if product is None:
            products = state.products()
            if not products:
                raise NotInstalled(
                    f"no product is installed in {directory}",
                    {"dir": str(directory)},
                    next_step=next_steps.INSTALL_KEY,
                )
            if len(products) > 1:
                raise BadRequest(
                    f"{len(products)} products are installed ({', '.join(products)})",
                    {"products": products},
                    next_step=next_steps.NAME_PRODUCT,
                )
            product = products[0]
        stored = state.read_product(product)
        if stored is None:
            installed = state.products()
            hint = f" (installed: {', '.join(installed)})" if installed else ""
            raise NotInstalled(
                f"product {product!r} is not installed in {directory}{hint}",
                {"product": product, "products": installed},
            )
        return cls(_descriptor_from_token(stored.descriptor_token), directory, **options)

    @property
    def random(self) -> identity.RandomSource:
        """The random source of new CMIDs, nonces and retry jitter: the one passed, else the
        OS's (``random.SystemRandom``, imported when first needed: status() never is)."""
        if self._random is None:
            from random import SystemRandom

            self._random = SystemRandom()
        return self._random

    @random.setter
    def random(self, source: identity.RandomSource) -> None:
        self._random = source

    @property
    def product(self) -> str:
        return self.descriptor.product

    def __repr__(self) -> str:
        return f"License({self.product!r}, {str(self.state.directory)!r})"

    # --- reading --------------------------------------------------------------------------

    def stored(self) -> ProductState | None:
        """The product's state file (None: no key installed), with the OOB grace and rearm
        limit of the signed descriptor, not the file's copies."""
        stored = self.state.read_product(self.product)
        if stored is None:
            return None
        record = machine.with_descriptor(stored.record, self.descriptor)
        return stored if record is stored.record else replace(stored, record=record)

    def _require(self) -> ProductState:
        stored = self.stored()
        if stored is None:
            raise NotInstalled(
                f"no product key is installed for {self.product}",
                {"product": self.product},
                next_step=next_steps.INSTALL_KEY,
            )
        return stored

    def _verify_stored(self, record: machine.ClientRecord) -> VolactError | None:
        """Verify the stored activation's chain; the error if it does not count."""
        held = record.activation
        if held is None:
            return None
        if record.product != self.product:
            return InvalidTicket("the state file's record is for another product")
        try:
            verified = verify_activation(
                self.descriptor,
                held.ticket,
                held.certificate,
                cmid=record.cmid,
                fingerprint=record.fingerprint,
            )
            machine.check_stored_activation(record, verified)  # rule 13
            revocations.check(self.state, self.descriptor, verified)  # a host revoked since
        except (InvalidTicket, InvalidHostCertificate) as error:
            return error
        return None

    def status(self) -> LicenseStatus:
        """The product's status now: offline and fast (one file read, two signature checks).

        A stored activation whose chain does not verify (root → certificate → ticket, for this
        machine) does not count: the status is computed without it and ``reason`` names the
        failure (``invalid_ticket`` or ``invalid_host_certificate``).
        """
        now = self.clock()
        stored = self.stored()
        if stored is None:
            return self._status_of(None, None, now)
        if stored.record.fingerprint != self.fingerprint:
            stored = self._after_clone(stored, now)
        return self._status_of(stored, self._verify_stored(stored.record), now)

    def _status_of(
        self, stored: ProductState | None, chain_error: VolactError | None, now: int
    ) -> LicenseStatus:
        descriptor = self.descriptor
        record = None if stored is None else stored.record
        if record is not None and chain_error is not None:
            record = machine.discard_activation(record, now)
        core = machine.status(record, now)
        reason = core.reason
        if chain_error is not None and reason != machine.CLOCK_TAMPERED:
            reason = chain_error.code
        status = LicenseStatus(
            product=descriptor.product,
            product_name=descriptor.product_name,
            state=core.state,
            reason=reason,
            valid_until=to_datetime(core.valid_until),
            grace_ends_at=to_datetime(core.grace_ends_at),
            days_left=core.days_left,
            expiry_warning=core.expiry_warning,
            next_attempt_at=to_datetime(core.next_attempt_at),
        )
        if stored is None or record is None:  # no key installed: the core status is all
            return status
        held = record.activation
        return replace(
            status,
            channel=record.channel.value,
            partial_key=record.key[-5:],
            cmid=record.cmid,
            host=stored.activated_by if held is not None else None,
            host_id=None if held is None else held.issuer_id,
            activated_at=None if held is None else to_datetime(held.issued_at),
            installed_at=to_datetime(record.installed_at),
            renewal_interval=record.renewal_interval,
            retry_interval=record.retry_interval,
            last_attempt_at=to_datetime(record.last_attempt_at),
            last_error=record.last_error,
            last_host=stored.last_host,
            rearms_left=record.rearm_limit - record.rearm_count,
            activation_error=None if chain_error is None else chain_error.message,
        )

    def next_attempt_at(self) -> int | None:
        """When (Unix seconds) the renewal loop should next try; None: never."""
        when = self.status().next_attempt_at
        return None if when is None else int(when.timestamp())

    # --- writing --------------------------------------------------------------------------

    def _update(
        self,
        change: Callable[[ProductState], ProductState],
        now: int,
        *,
        trust_clock: bool = True,
    ) -> ProductState:
        """Apply ``change`` to the freshly read state under the directory lock and write it.

        ``trust_clock`` False keeps the trusted time where ``change`` put it: after a host has
        said this machine's clock is wrong (``time_skew``), so ``now`` must not become trusted,
        and after a success, which re-anchors it to the ticket (client machine rule 7).
        """
        with self._lock, self.state.lock():
            current = self._require()
            changed = change(current)
            record = machine.observe(changed.record, now) if trust_clock else changed.record
            updated = replace(changed, record=record, descriptor_token=self.descriptor.token)
            self.state.write_product(updated)
            return updated

    def _after_clone(self, stored: ProductState, now: int) -> ProductState:
        """The state after a fingerprint change (a cloned image): a new CMID, written once.

        If this License is busy (an attempt in another thread) or the directory is not
        writable, the status is computed from the state as it would be, and written later.
        """
        if not self._lock.acquire(blocking=False):
            return self._recloned(stored, now)
        try:
            return self._update(lambda current: self._recloned(current, now), now)
        except StorageError:
            return self._recloned(stored, now)
        finally:
            self._lock.release()

    def _recloned(self, current: ProductState, now: int) -> ProductState:
        """``current`` after a fingerprint check: a new CMID if the image was cloned."""
        if current.record.fingerprint == self.fingerprint:
            return current
        record = machine.check_fingerprint(
            current.record, self.fingerprint, now, identity.new_cmid(self.random)
        )
        return replace(current, record=record, activated_by=None, pending_offline=None)

    def install_key(self, key: str | None = None) -> LicenseStatus:
        """Install a product key (``slmgr /ipk``): the descriptor's GVLK when ``key`` is None,
        or a MAK. Installing over an installed key keeps the CMID and install time; a different
        key drops the activation. Raises ``invalid_key`` for a key that is not this product's
        GVLK nor a MAK."""
        key_text = self.descriptor.gvlk if key is None else key
        now = self.clock()
        with self._lock, self.state.lock():
            stored = self.stored()
            if stored is None:
                record = machine.install_key(
                    self.descriptor,
                    key_text,
                    cmid=identity.new_cmid(self.random),
                    fingerprint=self.fingerprint,
                    now=now,
                )
                updated = ProductState(self.descriptor.token, machine.observe(record, now))
            else:
                record = machine.replace_key(stored.record, self.descriptor, key_text, now)
                if record.key != stored.record.key:
                    stored = replace(stored, activated_by=None, pending_offline=None)
                updated = replace(
                    stored,
                    record=machine.observe(record, now),
                    descriptor_token=self.descriptor.token,
                )
            self.state.write_product(updated)
        return self.status()

    def uninstall(self) -> bool:
        """Remove the product's key and state (``slmgr /upk``); False if none was installed."""
        with self._lock, self.state.lock():
            return self.state.remove_product(self.product)

    def rearm(self) -> LicenseStatus:
        """Restart the out-of-box grace with a new CMID (``slmgr /rearm``).

        Raises ``rearm_limit`` when none is left, ``bad_request`` when licensed, and
        ``clock_tampered`` while the clock is tampered."""
        now = self.clock()
        cmid = identity.new_cmid(self.random)
        self._update(
            lambda current: replace(
                current,
                record=machine.rearm(current.record, now, cmid),
                activated_by=None,
                pending_offline=None,
            ),
            now,
        )
        return self.status()

    # --- settings -------------------------------------------------------------------------

    def settings(self) -> MachineSettings:
        """The discovery settings in effect for this product."""
        stored = self.stored()
        machine_settings = self.state.read_settings()
        return machine_settings if stored is None else stored.settings.over(machine_settings)

    def configure(self, *, product_only: bool = False, **changes: Any) -> MachineSettings:
        """Change discovery settings (see :func:`update_settings`)."""
        return update_settings(
            self.state.directory, product=self.product if product_only else None, **changes
        )

    # --- activation (volact.client.activation, .diagnosis) -----------------------------------

    def activate(self, *, vendor_url: str | None = None) -> LicenseStatus:
        """Activate (or renew) now: a host for a GVLK, the vendor service for a MAK
        (``vendor_url`` overrides the descriptor's ``activation_url``).

        Returns the new status. Raises the typed error of the failure
        (``count_insufficient`` with ``details`` count, threshold and retry_interval,
        ``no_host_found``, ``host_unreachable``, ``invalid_host_certificate``…); the failure
        is recorded first, and the state is otherwise unchanged.
        """
        from volact.client import activation

        attempt = activation.attempt(self, vendor_url=vendor_url)
        if attempt.error is not None:
            raise attempt.error
        return attempt.status

    def renew(self) -> Attempt:
        """One activation attempt that reports its outcome instead of raising it (the renewal
        loop's step). Storage errors still raise."""
        from volact.client import activation

        return activation.attempt(self)

    def diagnose(self, *, vendor_url: str | None = None, activate: bool = False) -> Diagnosis:
        """Query every DNS name and ask each host found whether it answers, and explain; read-only
        (nothing is activated, counted or recorded). ``activate=True``: a real, recorded
        activation attempt with the same trace."""
        from volact.client import diagnosis

        if activate:
            return diagnosis.diagnose(self, vendor_url=vendor_url)
        return diagnosis.check(self, vendor_url=vendor_url)

    # --- renewal --------------------------------------------------------------------------

    def _renewal_loop(
        self, wake_interval: float, on_attempt: Callable[[Attempt], None] | None
    ) -> RenewalLoop:
        from volact.client.renewal import RenewalLoop

        return RenewalLoop(
            lambda: [self], clock=self.clock, wake_interval=wake_interval, on_attempt=on_attempt
        )

    def start_renewal(
        self,
        *,
        wake_interval: float = 60.0,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> RenewalThread:
        """Start the renewal loop in a background (daemon) thread; ``stop()`` the handle to end
        it. It activates at once if the product never tried, then renews at the renewal
        interval, and retries at the retry interval after a failure. ``on_attempt`` is called
        (in the loop's thread) after each attempt; by default attempts are logged to the
        ``volact.client.renewal`` logger. ``wake_interval`` bounds each sleep (seconds), so a
        clock jump or a state change by another process is seen within it."""
        from volact.client.renewal import RenewalThread

        return RenewalThread(self._renewal_loop(wake_interval, on_attempt)).start()

    async def run_renewal(
        self,
        *,
        wake_interval: float = 60.0,
        on_attempt: Callable[[Attempt], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        """The renewal loop as a coroutine: runs until ``stop`` is set or it is cancelled."""
        from volact.client.renewal import run_async

        await run_async(self._renewal_loop(wake_interval, on_attempt), stop)

    def renewal_task(
        self,
        *,
        wake_interval: float = 60.0,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> asyncio.Task[None]:
        """Start :meth:`run_renewal` as a task on the running event loop; cancel it to stop."""
        import asyncio

        return asyncio.get_running_loop().create_task(
            self.run_renewal(wake_interval=wake_interval, on_attempt=on_attempt),
            name=f"volact-renewal-{self.product}",
        )

    # --- MAK offline (volact.client.activation) ------------------------------------------

    def offline_request(self) -> str:
        """An offline MAK activation request file for this machine (its text).

        Carry it to a machine with internet access; the vendor answers it (``volact vendor
        fulfil``), and :meth:`install_offline_response` installs the answer here. Only the
        latest request's answer is accepted (its nonce must come back).
        """
        from volact.client import activation

        return activation.offline_request(self)

    def install_offline_response(self, source: str | bytes) -> LicenseStatus:
        """Install the vendor's answer to :meth:`offline_request` (a response file's text).

        Raises ``not_found`` when the response has no entry for this machine, ``bad_request``
        when no request is pending, the vendor's error for a refused machine, or
        ``invalid_ticket`` for a ticket that does not verify.
        """
        from volact.client import activation

        return activation.install_offline_response(self, source)
