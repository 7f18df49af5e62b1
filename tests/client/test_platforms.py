"""Windows and macOS on this Linux machine: each OS's identity reader with the answers that
system gives (a registry value, `ioreg`'s output), the default folders platformdirs gives for
each system, and the SDK's own suite with ``fcntl`` unavailable (docs/integration.md says what
is tested how)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest

from volact import paths
from volact.client import identity
from volact.client.state import StateDir
from volact.core.errors import ConfigurationError, VolactError

ROOT = Path(__file__).resolve().parents[2]

# What `ioreg -rd1 -c IOPlatformExpertDevice` prints on a Mac (trimmed, serial made up).
IOREG_OUTPUT = """\
+-o MacBookPro18,3  <class IOPlatformExpertDevice, id 0x100000222, registered, matched, active, busy 0 (1 ms), retain 39>
    {
      "IOPolledInterface" = "AppleARMWatchdogTimerHibernateHandler is not serializable"
      "#address-cells" = <02000000>
      "IOPlatformSerialNumber" = "C02XY0ZZMD6T"
      "model" = <"MacBookPro18,3">
      "IOPlatformUUID" = "3F1B7C2E-9A4D-5E6F-8B0C-1D2E3F4A5B6C"
      "manufacturer" = <"Apple Inc.">
    }
"""  # noqa: E501


class CannedRegistry:
    """The part of Windows' ``winreg`` module the reader calls, answering from ``values``
    the way the registry does (``OSError`` for a missing key or value)."""

    HKEY_LOCAL_MACHINE = 0x80000002
    KEY_READ = 0x20019
    KEY_WOW64_64KEY = 0x0100
    REG_SZ = 1
    REG_BINARY = 3

    def __init__(self, values: dict[tuple[str, str], tuple[Any, int]]) -> None:
        self.values = values
        self.opened: list[tuple[int, str, int]] = []

    def OpenKey(self, root: int, key: str, reserved: int, access: int) -> CannedRegistry._Key:
        self.opened.append((root, key, access))
        if not any(name == key for name, _ in self.values):
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return CannedRegistry._Key(self, key)

    def QueryValueEx(self, key: CannedRegistry._Key, name: str) -> tuple[Any, int]:
        try:
            return self.values[(key.name, name)]
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None

    class _Key:
        def __init__(self, registry: CannedRegistry, name: str) -> None:
            self.registry, self.name = registry, name

        def __enter__(self) -> CannedRegistry._Key:
            return self

        def __exit__(self, *exc: object) -> None:
            pass


GUID = "6f0e2d4c-1b3a-4c5d-8e9f-a0b1c2d3e4f5"


def test_windows_identity_is_the_machine_guid_from_the_64_bit_registry_view() -> None:
    registry = CannedRegistry({(identity.WINDOWS_KEY, "MachineGuid"): (GUID, 1)})
    assert identity.windows_identity(registry) == GUID
    root, key, access = registry.opened[0]
    assert (root, key) == (registry.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography")
    assert access & registry.KEY_WOW64_64KEY  # a 32-bit Python reads the same value
    assert identity.windows_identity(CannedRegistry({})) is None  # no key
    wrong_type = CannedRegistry({(identity.WINDOWS_KEY, "MachineGuid"): (b"\x01", 3)})
    assert identity.windows_identity(wrong_type) is None
    # On this Linux machine there is no winreg: no identity from the registry.
    assert identity.windows_identity() is None


def test_macos_identity_is_the_platform_uuid_that_ioreg_prints(tmp_path: Path) -> None:
    assert identity.parse_ioreg(IOREG_OUTPUT) == "3F1B7C2E-9A4D-5E6F-8B0C-1D2E3F4A5B6C"
    assert identity.parse_ioreg("+-o Root  <class IORegistryEntry>\n") is None
    assert identity.IOREG_COMMAND == ("/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice")
    # The reader runs the command: here a stand-in executable that prints a Mac's answer.
    ioreg = tmp_path / "ioreg"
    (tmp_path / "answer.txt").write_text(IOREG_OUTPUT)
    ioreg.write_text(f"#!/bin/sh\ncat {tmp_path / 'answer.txt'}\n")
    ioreg.chmod(0o755)
    assert identity.ioreg_identity((str(ioreg), "-rd1")) == "3F1B7C2E-9A4D-5E6F-8B0C-1D2E3F4A5B6C"
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    failing.chmod(0o755)
    assert identity.ioreg_identity((str(failing),)) is None
    assert identity.ioreg_identity((str(tmp_path / "missing"),)) is None


def test_linux_identity_is_the_machine_id_file_then_dbus(tmp_path: Path) -> None:
    systemd, dbus = tmp_path / "machine-id", tmp_path / "dbus-machine-id"
    dbus.write_text("dbus0123456789abcdef0123456789ab\n")
    assert identity.linux_identity((systemd, dbus)) == "dbus0123456789abcdef0123456789ab"
    systemd.write_text("0123456789abcdef0123456789abcdef\n")
    assert identity.linux_identity((systemd, dbus)) == "0123456789abcdef0123456789abcdef"
    assert identity.linux_identity((tmp_path / "none",)) is None
    assert identity.MACHINE_ID_FILES[0] == Path("/etc/machine-id")


def test_an_image_not_yet_booted_has_no_machine_id(tmp_path: Path) -> None:
    # machine-id(5): "uninitialized" marks an image whose first boot has not run yet; every
    # machine made from it would otherwise share one identity (and one fingerprint).
    systemd, dbus = tmp_path / "machine-id", tmp_path / "dbus-machine-id"
    systemd.write_text("uninitialized\n")
    assert identity.linux_identity((systemd,)) is None
    dbus.write_text("dbus0123456789abcdef0123456789ab\n")
    assert identity.linux_identity((systemd, dbus)) == "dbus0123456789abcdef0123456789ab"


def test_an_identity_file_follows_the_one_reading_rule(tmp_path: Path) -> None:
    # A FIFO where the orchestrator's file should be used to make the app wait for ever.
    fifo = tmp_path / "cluster-uid"
    os.mkfifo(fifo)
    with pytest.raises(VolactError, match="named pipe"):
        identity.resolve_identity(identity.file_source(fifo))


def test_the_host_name_is_the_identity_only_where_the_system_has_none() -> None:
    # This machine has /etc/machine-id: that is its identity on Linux.
    assert identity.machine_identity("linux") == Path("/etc/machine-id").read_text().strip()
    # Asked as Windows or macOS, it has neither a registry nor ioreg: only then the host name.
    assert identity.machine_identity("win32").startswith("hostname:")


def test_the_environment_does_not_choose_the_machine_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOLACT_MACHINE_ID", "someone-elses-machine")
    assert identity.machine_identity() == Path("/etc/machine-id").read_text().strip()
    assert identity.resolve_identity(None) == identity.machine_identity()
    assert not hasattr(identity, "MACHINE_ID_ENV")


def test_an_app_chooses_its_identity_source(tmp_path: Path) -> None:
    assert identity.resolve_identity("i-0abc123") == "i-0abc123"
    assert identity.resolve_identity(lambda: " cluster-uid-42\n") == "cluster-uid-42"
    mounted = tmp_path / "instance-id"
    mounted.write_text("i-0123456789abcdef0\n")
    assert identity.resolve_identity(identity.file_source(mounted)) == "i-0123456789abcdef0"
    with pytest.raises(ConfigurationError, match="cannot read the machine identity"):
        identity.resolve_identity(identity.file_source(tmp_path / "absent"))
    with pytest.raises(ConfigurationError, match="empty"):
        identity.resolve_identity(lambda: "  ")


def test_default_client_folders_are_each_systems_machine_wide_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # platformdirs reads Windows' known folder through its documented override here (on
    # Windows it asks the shell for FOLDERID_ProgramData).
    monkeypatch.setenv("WIN_PD_OVERRIDE_COMMON_APPDATA", "C:\\ProgramData")
    windows = PureWindowsPath(str(paths.client_system_dir("win32")))
    assert windows == PureWindowsPath(r"C:\ProgramData\volact\client")
    macos = PurePosixPath(paths.client_system_dir("darwin"))
    assert macos == PurePosixPath("/Library/Application Support/volact/client")
    assert paths.client_system_dir("linux") == PurePosixPath("/var/lib/volact/client")
    from platformdirs.unix import Unix

    assert Path(Unix("volact").site_state_dir) / "client" == paths.client_system_dir("linux")


def test_the_client_state_is_machine_wide_even_when_not_writable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No per-user fallback: every user's default is the one machine-wide folder."""
    monkeypatch.delenv("VOLACT_STATE_DIR", raising=False)
    assert paths.default_dir("client") == Path("/var/lib/volact/client")
    monkeypatch.setattr(paths, "SYSTEM_ROOT", Path("/proc/volact-not-writable"))
    assert paths.default_dir("client") == Path("/proc/volact-not-writable/client")


def test_a_state_directory_that_cannot_be_written_names_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Exception, match="install the key and activate as an administrator"):
        with StateDir(blocker / "client").lock():
            pass


# --- the SDK's suite with fcntl unavailable -----------------------------------------------

# Loaded before anything else in the child (sitecustomize): `fcntl` cannot be imported, as on
# Windows, and `msvcrt.locking` is there, doing what Windows does (an exclusive lock per open
# handle, LK_NBLCK failing at once with EACCES while another handle holds it) with flock.
SITECUSTOMIZE = """
import errno, sys, types
import fcntl as _flock
import asyncio, getpass, subprocess  # they ask for msvcrt to tell Windows: ask before it exists

sys.modules["fcntl"] = None  # `import fcntl` raises ImportError from now on
msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_UNLCK, msvcrt.LK_LOCK, msvcrt.LK_NBLCK = 0, 1, 2
msvcrt.calls = []

def locking(fd, mode, nbytes):
    msvcrt.calls.append((mode, nbytes))
    if mode == msvcrt.LK_UNLCK:
        _flock.flock(fd, _flock.LOCK_UN)
        return
    try:
        _flock.flock(fd, _flock.LOCK_EX | _flock.LOCK_NB)
    except BlockingIOError:
        msvcrt.calls.append(("refused", nbytes))
        raise PermissionError(errno.EACCES, "Permission denied") from None

msvcrt.locking = locking
sys.modules["msvcrt"] = msvcrt

"""

CHECK_IMPORT = textwrap.dedent(
    """
    import sys
    import volact.client, volact.client.state
    from volact.cli import main
    try:
        import fcntl
    except ImportError:
        print("no fcntl")
    print("fcntl" in sys.modules and sys.modules["fcntl"] is None)
    """
)


def _without_fcntl(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOLACT_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT / "src"), str(ROOT)])
    return env


def test_import_volact_client_needs_no_fcntl(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORT],
        capture_output=True,
        text=True,
        env=_without_fcntl(tmp_path),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["no", "fcntl", "True"]


@pytest.mark.slow
def test_the_sdk_suite_passes_with_fcntl_unavailable(tmp_path: Path) -> None:
    """The SDK's tests (license, renewal, MAK, discovery) in a Python without fcntl, locking
    with msvcrt's call; the lock test checks that the Windows path really took the lock."""
    lock_check = tmp_path / "test_windows_lock.py"
    lock_check.write_text(
        textwrap.dedent(
            """
            import msvcrt, threading, time
            from volact.client.state import StateDir

            def test_two_handles_exclude_each_other(tmp_path):
                state = StateDir(tmp_path)
                inside, order = threading.Event(), []
                def other():
                    inside.wait()
                    with state.lock():
                        order.append("other")
                thread = threading.Thread(target=other)
                thread.start()
                with state.lock():
                    inside.set()
                    deadline = time.monotonic() + 60
                    while ("refused", 1) not in msvcrt.calls:  # the other one was kept out
                        assert time.monotonic() < deadline
                        time.sleep(0.01)
                    order.append("first")
                thread.join()
                assert order == ["first", "other"]
                modes = [mode for mode, _ in msvcrt.calls]
                assert msvcrt.LK_NBLCK in modes and msvcrt.LK_UNLCK in modes
            """
        )
    )
    suite = [
        "tests/client/test_license.py",
        "tests/client/test_renewal.py",
        "tests/client/test_mak_transport.py",
        "tests/client/test_dns_discovery.py",
        str(lock_check),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *suite],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_without_fcntl(tmp_path),
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
