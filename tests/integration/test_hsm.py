"""The vendor's root key in a PKCS#11 token (issue 20), against SoftHSM2 with a token this test
makes (``softhsm2-util --init-token`` under its own ``SOFTHSM2_CONF``): the key is generated in
the token, every root signature is the token's CKM_EDDSA, the private key cannot be read, and a
host certified with it activates a client that verifies the whole chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.authority.helpers import PRODUCT, World, issue_host_key, make_host, volact_env
from tests.integration.helpers import Hosts, certify, low_threshold, machine
from volact.authority.hsm import PIN_ENV, TokenChoice
from volact.authority.operations import Vendor
from volact.core.descriptor import load_descriptor

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"

pytestmark = pytest.mark.skipif(not Path(MODULE).exists(), reason="softhsm2 is not installed")


def init_token(conf: Path, label: str) -> None:
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
         "--so-pin", "87654321"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SoftHSM2 configuration of this module's own (the library reads it once per process)."""
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    patch = pytest.MonkeyPatch()
    patch.setenv("SOFTHSM2_CONF", str(conf))
    patch.setenv(PIN_ENV, PIN)
    # Both tokens now: SoftHSM2 lists the tokens that exist when a process first loads it.
    init_token(conf, "in-process")
    init_token(conf, "cli")
    try:
        yield conf
    finally:
        patch.undo()


def test_hsm_root_key_certifies_a_host_and_a_client_verifies_the_chain(
    softhsm: Path, tmp_path: Path, hosts: Hosts
) -> None:
    choice = TokenChoice(MODULE, "in-process")
    with Vendor.init(tmp_path / "vendor", vendor_id="acme", hsm=choice) as vendor:
        vendor.add_product(PRODUCT, name="Writer 2026", group="office-2026")
        record, root = vendor.active_root_key()
        assert record.storage is not None and root.is_external
    world = low_threshold(World(tmp_path / "vendor"))
    assert list((tmp_path / "vendor" / "root-keys").iterdir()) == []  # no key file
    key = issue_host_key(world, hosts=1)
    files = make_host(tmp_path / "host", key)
    certify(world, files)  # the certificate and the response: signed in the token
    hosts.start("h:7688", files)
    client = machine(world, tmp_path, "pc1", hosts, "h:7688")  # its descriptor: the token's
    assert client.activate().state == "licensed"
    assert client.status().state == "licensed"  # the chain verified again, offline

    # The private key cannot be read out of the token.
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    token = pkcs11.lib(MODULE).get_token(token_label="in-process")
    with token.open(user_pin=PIN) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS)
        assert private[Attribute.SENSITIVE] and not private[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]


def test_hsm_through_the_command_line(softhsm: Path, tmp_path: Path) -> None:
    """`vendor init` and `root-key add` with --hsm-module/--hsm-token in real processes."""
    env = volact_env(SOFTHSM2_CONF=str(softhsm), **{PIN_ENV: PIN})
    vendor_dir = ["--dir", str(tmp_path / "vendor")]
    hsm = ["--hsm-module", MODULE, "--hsm-token", "cli"]

    def run(*args: str, environment: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "volact", *args]
        return subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=60, check=False
        )

    assert run("vendor", "init", "--id", "acme", *hsm, *vendor_dir).returncode == 0
    added = run("vendor", "root-key", "add", "--activate", *hsm, *vendor_dir, "--json")
    assert added.returncode == 0, added.stderr
    listed = json.loads(run("vendor", "root-key", "list", *vendor_dir, "--json").stdout)
    assert [key["storage"] for key in listed] == ["pkcs11", "pkcs11"]
    assert (
        run(
            "vendor", "product", "add", PRODUCT, "--name", "W", "--group", "g", *vendor_dir
        ).returncode
        == 0
    )
    # Signing needs the PIN; without it: one clear line, no traceback.
    no_pin = {k: v for k, v in env.items() if k != PIN_ENV}
    refused = run("vendor", "product", "export", PRODUCT, *vendor_dir, environment=no_pin)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert PIN_ENV in refused.stderr
    exported = run("vendor", "product", "export", PRODUCT, *vendor_dir)
    assert exported.returncode == 0, exported.stderr
    descriptor = load_descriptor(exported.stdout.encode())  # verifies the token's signature
    assert len(descriptor.root_keys) == 2
    assert descriptor.root_keys[0] == json.loads(added.stdout)["public_key"]  # the active one


def test_a_module_that_does_not_load_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong --hsm-module (no such file, not a PKCS#11 library) is the vendor's
    configuration, said as such: not a storage error about a token."""
    from volact.authority.hsm import TokenKeys
    from volact.core.errors import ConfigurationError

    monkeypatch.setenv(PIN_ENV, PIN)
    not_a_library = tmp_path / "not-a-library.so"
    not_a_library.write_text("text\n")
    for module in (str(tmp_path / "missing.so"), str(not_a_library)):
        with pytest.raises(ConfigurationError, match="cannot load the PKCS#11 module"):
            TokenKeys().generate(TokenChoice(module, "volact-test"), "label", b"\x01")
