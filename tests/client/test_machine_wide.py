"""One CMID per device: the state is machine-wide, and every user's processes share it.

Real processes of different users (uids switched with ``setpriv``; the tests run as root), an
app embedding the SDK in each, a real `volact host serve`; and the copied-state-directory trick
of a dishonest customer, which the environment can no longer help (issue 16, finding 2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import Vendor
from tests.ports import free_port
from volact.core.policy import GroupPolicy

from .conftest import START_TIMEOUT, Machine, ServedProcess, clean_env, make_host_dir, serve_host

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GROUP_ID = 23400  # the app's users' group on this machine
ALICE, BOB, CAROL = 23401, 23402, 23403  # Carol is not in the group

APP = """
import json, os, sys
from volact.client import License, VolactError

descriptor, state_dir, action, *rest = sys.argv[1:]
lic = License.from_descriptor(descriptor, state_dir)
try:
    if action == "install":
        lic.install_key(rest[0])
        lic.configure(manual_host=rest[1])
    if action in ("install", "activate"):
        lic.activate()
except VolactError as error:
    print(json.dumps({"error": error.code, "message": str(error)}))
    sys.exit(1)
st = lic.status()
print(json.dumps({"uid": os.getuid(), "cmid": st.cmid, "state": str(st.state)}))
"""


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user can reach (pytest's own tmp is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="volact-users-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def as_user(uid: int, groups: list[int], argv: list[str], env: dict[str, str]) -> list[str]:
    """``argv`` as user ``uid`` in ``groups``. The user keeps CAP_DAC_READ_SEARCH only, so
    that it can read the test's interpreter and packages wherever they are installed (under
    /root, say); every write is checked as for any user."""
    group_option = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", *group_option, *caps, "--", *argv]


def app_as(
    uid: int, shared: Path, state_dir: Path, *args: str, in_group: bool = True
) -> tuple[int, dict[str, Any]]:
    env = clean_env(HOME=str(shared), PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, str(shared / "app.py"), str(shared / "writer.json"), str(state_dir)]
    done = subprocess.run(
        as_user(uid, [GROUP_ID] if in_group else [], [*argv, *args], env),
        capture_output=True,
        text=True,
        env=env,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_two_users_processes_share_one_cmid(
    tmp_path: Path, shared: Path, processes: list[ServedProcess]
) -> None:
    vendor = Vendor()
    (shared / "writer.json").write_text(vendor.descriptor().to_file())
    (shared / "app.py").write_text(APP)
    for name in ("writer.json", "app.py"):
        (shared / name).chmod(0o644)
    # The machine-wide state folder, made shared the documented way: the app's users' group.
    state_dir = shared / "client"
    state_dir.mkdir()
    os.chown(state_dir, 0, GROUP_ID)
    state_dir.chmod(0o2775)
    now = int(time.time())
    port = free_port()
    host_dir = make_host_dir(vendor, tmp_path / "host", now=now, policy=GroupPolicy(threshold=1))
    serve_host(processes, host_dir.directory, port, clean_env())

    code, alice = app_as(
        ALICE, shared, state_dir, "install", vendor.descriptor().gvlk, f"127.0.0.1:{port}"
    )
    assert code == 0 and alice["state"] == "licensed" and alice["uid"] == ALICE
    code, bob = app_as(BOB, shared, state_dir, "status")
    assert code == 0 and bob == {**alice, "uid": BOB}  # the same CMID, licensed
    code, bob = app_as(BOB, shared, state_dir, "activate")  # Bob's app renews it
    assert code == 0 and bob["cmid"] == alice["cmid"] and bob["state"] == "licensed"
    assert (state_dir / "writer-2026.license.json").stat().st_uid == BOB
    code, again = app_as(ALICE, shared, state_dir, "status")
    assert code == 0 and again["cmid"] == alice["cmid"]

    # Carol may read the device's status but not write it: a clear error, nothing changed.
    code, carol = app_as(CAROL, shared, state_dir, "status", in_group=False)
    assert code == 0 and carol["cmid"] == alice["cmid"] and carol["state"] == "licensed"
    before = (state_dir / "writer-2026.license.json").read_bytes()
    code, refused = app_as(CAROL, shared, state_dir, "activate", in_group=False)
    assert code == 1 and refused["error"] == "storage_error"
    assert "install the key and activate as an administrator" in refused["message"]
    assert (state_dir / "writer-2026.license.json").read_bytes() == before

    # Every user's default is the machine-wide folder (no per-user fallback).
    env = clean_env(HOME=str(shared), PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
    where = subprocess.run(
        as_user(
            CAROL,
            [],
            [
                sys.executable,
                "-c",
                "from volact.client.settings import resolve_state_dir; print(resolve_state_dir())",
            ],
            env,
        ),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert where.stdout.strip() == "/var/lib/volact/client"


def test_a_copied_state_directory_is_not_licensed_whatever_the_environment_says(
    tmp_path: Path, processes: list[ServedProcess]
) -> None:
    """Issue 16, finding 2: a licensed state directory copied to another machine, started
    with VOLACT_MACHINE_ID set to the source's identity, used to stay licensed."""
    vendor = Vendor()
    descriptor = tmp_path / "writer.json"
    descriptor.write_text(vendor.descriptor().to_file())
    now = int(time.time())
    port = free_port()
    host_dir = make_host_dir(vendor, tmp_path / "host", now=now, policy=GroupPolicy(threshold=1))
    serve_host(processes, host_dir.directory, port, clean_env())
    source = Machine("source", tmp_path / "source")
    source.run("install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor))
    source.run("set-host", f"127.0.0.1:{port}")
    source.run("activate")
    licensed = json.loads(source.run("status", "--json").stdout)
    assert licensed["state"] == "licensed"

    shutil.copytree(source.state_dir, tmp_path / "clone")
    clone = Machine("clone", tmp_path / "clone")
    done = subprocess.run(
        clone.command("status", "--json"),
        capture_output=True,
        text=True,
        env=clone.env(VOLACT_MACHINE_ID=source.identity),
        timeout=START_TIMEOUT,
        check=True,
    )
    copied = json.loads(done.stdout)
    assert copied["state"] != "licensed"
    assert copied["cmid"] != licensed["cmid"]  # a new machine: a new CMID, counted on its own
    # The source is untouched.
    assert json.loads(source.run("status", "--json").stdout)["cmid"] == licensed["cmid"]


def test_a_user_who_may_not_write_the_state_cannot_hold_its_lock(shared: Path) -> None:
    """The renewal service (root) owns the machine-wide folder. A user outside it used to be
    able to open the world-readable `.lock` and hold its flock, and every writer, the service
    included, then waited for ever: the machine's activation would lapse."""
    from volact.client import License

    vendor = Vendor()
    descriptor = shared / "writer.json"
    descriptor.write_text(vendor.descriptor().to_file())
    state_dir = shared / "client"
    License.from_descriptor(descriptor, state_dir).install_key(vendor.descriptor().gvlk)
    lock = state_dir / ".lock"
    assert lock.exists()
    as_carol = ["setpriv", f"--reuid={CAROL}", f"--regid={CAROL}", "--clear-groups"]
    held = subprocess.run(
        [*as_carol, "flock", "--nonblock", str(lock), "true"],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert held.returncode != 0 and "Permission denied" in held.stderr, held
    # Her reading of the device's status needs no lock: the license file stays readable.
    assert (state_dir / "writer-2026.license.json").stat().st_mode & 0o004
