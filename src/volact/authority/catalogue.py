"""The vendor's catalogue: its identity, root keys, product groups, products and issued keys.

:class:`Catalogue` reads and writes the vendor store around the rules of
:mod:`volact.authority.issuance`, one write transaction (SQLite ``BEGIN IMMEDIATE``, or
PostgreSQL's advisory lock) per change. :class:`~volact.authority.operations.Vendor` builds on
it and answers requests (host certification, MAK activation, offline fulfilment). Nothing here
knows HTTP.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from volact import crypto
from volact.authority import issuance
from volact.authority.files import VendorDir
from volact.authority.records import GroupRecord, KeyRecord, ProductRecord, RootKeyRecord
from volact.authority.store import VendorStore
from volact.clock import Clock, system_clock
from volact.core import validate
from volact.core.descriptor import DEFAULT_SRV_SERVICE, ProductDescriptor, sign_descriptor
from volact.core.durations import format_duration
from volact.core.errors import (
    ConfigurationError,
    NotFound,
    ProductUnknown,
    StorageError,
)
from volact.core.keys import Channel, ProductKey, make_gvlk, make_secret_key, parse_key
from volact.core.policy import (
    DEFAULT_OOB_GRACE,
    DEFAULT_REARM_LIMIT,
    OOB_GRACE_BOUNDS,
    REARM_LIMIT_BOUNDS,
)

if TYPE_CHECKING:
    from volact.authority.hsm import TokenChoice, TokenKeys

RandomBytes = Callable[[int], bytes]

_SERIAL = re.compile(r"^(gvlk|host|mak)-[0-9a-f]{24}$")


def _check_duration(option: str, seconds: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= seconds <= high:
        raise ConfigurationError(
            f"{option} {format_duration(seconds)} is outside the allowed range "
            f"{format_duration(low)}–{format_duration(high)}",
            {"min": low, "max": high},
        )


class Catalogue:
    """One vendor directory's catalogue, open. Thread-safe: operations are serialised by a
    lock."""

    def __init__(
        self,
        directory: VendorDir,
        store: VendorStore,
        *,
        clock: Clock = system_clock,
        random_bytes: RandomBytes = os.urandom,
    ) -> None:
        self.directory = directory
        self.store = store
        self.clock = clock
        self.random_bytes = random_bytes
        # One lock for every use of the store's connection: the service calls in from threads.
        self.lock = threading.RLock()
        self._signing_keys: dict[int, crypto.SigningKey] = {}
        self._identity: tuple[str, str] | None = None
        self._tokens: TokenKeys | None = None  # PKCS#11 sessions, opened on first use

    @property
    def vendor_id(self) -> str:
        """The vendor's id (it never changes, so it is read once)."""
        return self._read_identity()[0]

    @property
    def vendor_name(self) -> str:
        return self._read_identity()[1]

    def _read_identity(self) -> tuple[str, str]:
        if self._identity is None:
            with self.lock:
                self._identity = (self.store.vendor_id, self.store.vendor_name)
        return self._identity

    # --- root keys -----------------------------------------------------------------------

    def _token_keys(self) -> TokenKeys:
        if self._tokens is None:
            from volact.authority.hsm import TokenKeys

            self._tokens = TokenKeys()
        return self._tokens

    def _add_root_key(
        self, *, active: bool = True, hsm: TokenChoice | None = None
    ) -> RootKeyRecord:
        seq = self.store.next_root_key_seq()
        storage: str | None = None
        if hsm is None:
            key = crypto.SigningKey.generate()
            # The file first: a crash leaves an unused file, never a listed key without its file.
            self.directory.save_root_key(seq, key)
        else:
            # Generated inside the token (the private key never leaves it); a crash leaves an
            # unused key pair in the token, never a listed key without its private key.
            label = f"volact-root-{self.random_bytes(4).hex()}-{seq}"
            location, key = self._token_keys().generate(hsm, label, self.random_bytes(8))
            storage = location.to_storage()
        now = self.clock()
        self.store.add_root_key(
            seq, key.key_id, key.public_key.paserk, now, active=active, storage=storage
        )
        self._signing_keys[seq] = key
        state = "active" if active else "valid"
        return RootKeyRecord(seq, key.key_id, key.public_key.paserk, state, now, None, storage)

    def add_root_key(
        self, *, activate: bool = False, hsm: TokenChoice | None = None
    ) -> RootKeyRecord:
        """Rotation, step 1: a new root key, listed in every descriptor exported from now on.

        By default it does not sign yet (state ``valid``): ship the new descriptors first, then
        :meth:`activate_root_key`. Apps whose descriptor lists only the old key would refuse
        certificates signed by the new one. ``activate=True`` makes it sign at once (for a
        leaked key, when every host is re-certified and every app updated anyway).
        """
        with self.lock, self.store.transaction():
            return self._add_root_key(active=activate, hsm=hsm)

    def activate_root_key(self, key_id: str) -> RootKeyRecord:
        """Rotation, step 2: ``key_id`` signs from now on; the previous key stays listed."""
        with self.lock, self.store.transaction():
            found = self._root_key(key_id)
            if found.state == "retired":
                raise ConfigurationError("a retired root key cannot sign again; add a new one")
            if found.state != "active":
                self.store.activate_root_key(key_id)
        return self._root_key(key_id)

    def retire_root_key(self, key_id: str) -> RootKeyRecord:
        """Stop listing a root key in new descriptors and responses (not the active key)."""
        with self.lock, self.store.transaction():
            found = self._root_key(key_id)
            if found.state == "active":
                raise ConfigurationError(
                    "the active root key cannot be retired; add a new one first "
                    "(`volact vendor root-key add`)"
                )
            if found.state == "retired":
                return found
            self.store.retire_root_key(key_id, self.clock())
        return self._root_key(key_id)

    def _root_key(self, key_id: str) -> RootKeyRecord:
        found = next((k for k in self.store.root_keys() if k.key_id == key_id), None)
        if found is None:
            raise NotFound(f"no root key {key_id!r}; `volact vendor root-key list` shows them")
        return found

    def root_keys(self) -> list[RootKeyRecord]:
        with self.lock:
            return self.store.root_keys()

    def active_root_key(self) -> tuple[RootKeyRecord, crypto.SigningKey]:
        """The root key that signs now (its file is read once, then kept)."""
        with self.lock:
            return self._active_root_key()

    def _active_root_key(self) -> tuple[RootKeyRecord, crypto.SigningKey]:
        records = self.store.root_keys()
        active = next((record for record in records if record.state == "active"), None)
        if active is None:
            raise StorageError("the vendor database lists no active root key")
        key = self._signing_keys.get(active.seq)
        if key is None and active.storage is not None:
            from volact.authority.hsm import TokenKey

            location = TokenKey.from_storage(active.storage)
            key = self._token_keys().open(location, active.public_key)
            self._signing_keys[active.seq] = key
        if key is None:
            key = self.directory.load_root_key(active.seq)
            if key.key_id != active.key_id:
                raise StorageError(
                    f"the root key file {self.directory.root_key_path(active.seq)} does not hold "
                    f"root key {active.key_id}"
                )
            self._signing_keys[active.seq] = key
        return active, key

    def listed_root_keys(self) -> tuple[str, ...]:
        """Every non-retired root public key, the active one first."""
        with self.lock:
            _, active = self._active_root_key()
            records = self.store.root_keys()
        listed = [record.public_key for record in records if record.state != "retired"]
        return issuance.root_keys_for_export(active, listed)

    # --- groups and products -------------------------------------------------------------

    def group(self, group_id: str) -> GroupRecord:
        found = self.store.group(group_id)
        if found is None:
            raise NotFound(
                f"no product group {group_id!r}; a group is made by its first product "
                "(`volact vendor product add … --group GROUP`)",
                {"group": group_id},
            )
        return found

    def groups(self) -> list[GroupRecord]:
        return self.store.groups()

    def set_group(self, group_id: str, changes: Mapping[str, int]) -> GroupRecord:
        """Change a group's policy; hosts get it with their next certificate."""
        with self.lock, self.store.transaction():
            record = self.group(group_id)
            policy = issuance.update_group_policy(record.policy, changes)
            self.store.put_group(group_id, policy, self.clock())
        return self.group(group_id)

    def add_product(
        self,
        product_id: str,
        *,
        name: str,
        group: str,
        policy: Mapping[str, int] | None = None,
        oob_grace: int = DEFAULT_OOB_GRACE,
        rearm_limit: int = DEFAULT_REARM_LIMIT,
        srv_service: str = DEFAULT_SRV_SERVICE,
        activation_url: str | None = None,
    ) -> ProductRecord:
        """Define a product; its group is made with ``policy`` if new (see issuance rule 1)."""
        validate.check_identifier(product_id, "product")
        validate.check_identifier(group, "group")
        validate.string({"name": name}, "name", max_len=200)
        _check_duration("--oob-grace", oob_grace, OOB_GRACE_BOUNDS)
        if not REARM_LIMIT_BOUNDS[0] <= rearm_limit <= REARM_LIMIT_BOUNDS[1]:
            raise ConfigurationError(
                f"--rearms must be {REARM_LIMIT_BOUNDS[0]}–{REARM_LIMIT_BOUNDS[1]}",
                {"field": "rearm_limit"},
            )
        validate.string({"srv_service": srv_service}, "srv_service", max_len=63)
        if not srv_service.startswith("_") or "._" not in srv_service:
            raise ConfigurationError(
                "--srv-service must look like '_volact._tcp'", {"field": "srv_service"}
            )
        if activation_url is not None:
            validate.string({"activation_url": activation_url}, "activation_url", max_len=2000)
            if not activation_url.startswith(("http://", "https://")):
                raise ConfigurationError("--activation-url must be an http:// or https:// URL")
        with self.lock, self.store.transaction():
            if self.store.product(product_id) is not None:
                raise ConfigurationError(
                    f"product {product_id!r} exists already", {"product": product_id}
                )
            now = self.clock()
            existing = self.store.group(group)
            merged = issuance.merge_group_policy(
                group, existing.policy if existing else None, policy or {}
            )
            if existing is None:
                self.store.put_group(group, merged, now)
            record = ProductRecord(
                product_id, name, group, oob_grace, rearm_limit, srv_service, activation_url, now
            )
            self.store.add_product(record)
            self._record_gvlk(record, now)
        return record

    def product(self, product_id: str) -> ProductRecord:
        found = self.store.product(product_id)
        if found is None:
            raise ProductUnknown(
                f"no product {product_id!r}; `volact vendor product list` shows them",
                {"product": product_id},
            )
        return found

    def products(self) -> list[ProductRecord]:
        return self.store.products()

    def gvlk(self, product_id: str) -> ProductKey:
        product = self.product(product_id)
        return make_gvlk(self.vendor_id, product.group_id, product.product_id)

    def _record_gvlk(self, product: ProductRecord, now: int) -> KeyRecord:
        key = make_gvlk(self.vendor_id, product.group_id, product.product_id)
        record = KeyRecord(
            key.serial,
            "gvlk",
            key.text,
            product.product_id,
            (product.group_id,),
            None,
            None,
            None,
            0,
            now,
        )
        self.store.add_key(record)
        return record

    def descriptor(self, product_id: str) -> ProductDescriptor:
        """The signed product descriptor: all non-retired root keys, signed by the active one."""
        product = self.product(product_id)
        _, root = self.active_root_key()
        unsigned = ProductDescriptor(
            vendor_id=self.vendor_id,
            vendor_name=self.vendor_name,
            root_keys=self.listed_root_keys(),
            product=product.product_id,
            product_name=product.name,
            group=product.group_id,
            gvlk=self.gvlk(product_id).text,
            srv_service=product.srv_service,
            oob_grace=product.oob_grace,
            rearm_limit=product.rearm_limit,
            activation_url=product.activation_url,
        )
        return sign_descriptor(root, unsigned)

    # --- keys ----------------------------------------------------------------------------

    def issue_gvlk(self, product_id: str) -> KeyRecord:
        """The product's GVLK (always the same key; recorded once)."""
        with self.lock, self.store.transaction():
            return self._record_gvlk(self.product(product_id), self.clock())

    def _secret_key(self, channel: Channel) -> ProductKey:
        return make_secret_key(channel, self.random_bytes(12))

    def issue_host_key(
        self, *, customer: str, groups: list[str], host_limit: int = issuance.DEFAULT_HOST_LIMIT
    ) -> KeyRecord:
        validate.string({"customer": customer}, "customer", max_len=200)
        validate.integer(
            {"hosts": host_limit},
            "hosts",
            minimum=issuance.HOST_LIMIT_BOUNDS[0],
            maximum=issuance.HOST_LIMIT_BOUNDS[1],
        )
        unique = list(dict.fromkeys(groups))
        if not unique:
            raise ConfigurationError("a host key needs at least one product group (--groups G1,G2)")
        with self.lock, self.store.transaction():
            for group in unique:
                self.group(group)
            key = self._secret_key(Channel.HOST)
            record = KeyRecord(
                key.serial,
                "host",
                key.text,
                None,
                tuple(unique),
                customer,
                host_limit,
                None,
                0,
                self.clock(),
            )
            self.store.add_key(record)
        return record

    def issue_mak(
        self,
        product_id: str,
        *,
        count: int,
        validity: int | None = None,
        customer: str | None = None,
    ) -> KeyRecord:
        validate.integer(
            {"count": count},
            "count",
            minimum=issuance.MAK_COUNT_BOUNDS[0],
            maximum=issuance.MAK_COUNT_BOUNDS[1],
        )
        if customer is not None:
            validate.string({"customer": customer}, "customer", max_len=200)
        with self.lock, self.store.transaction():
            product = self.product(product_id)
            key = self._secret_key(Channel.MAK)
            record = KeyRecord(
                key.serial,
                "mak",
                key.text,
                product.product_id,
                (product.group_id,),
                customer,
                count,
                validity,
                0,
                self.clock(),
            )
            self.store.add_key(record)
        return record

    def issued_keys(self) -> list[KeyRecord]:
        """Every key issued, oldest first."""
        return self.store.keys()

    def find_key(self, text: str) -> KeyRecord:
        """A key by its text or its serial (``mak-…``)."""
        candidate = text.strip().lower()
        serial = candidate if _SERIAL.match(candidate) else parse_key(text).serial
        found = self.store.key(serial)
        if found is None:
            raise NotFound(f"no key {serial} in this vendor's records", {"serial": serial})
        return found

    def key_activations(self, record: KeyRecord) -> list[dict[str, Any]]:
        if record.channel == "host":
            return self.store.certifications(record.serial)
        if record.channel == "mak":
            return self.store.mak_activations(record.serial)
        return []
