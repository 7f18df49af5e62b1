"""The words a client's user reads: every error names a next step that works from where the
reader stands (a command at the CLI, a call in the SDK), no message sends the user in a circle,
and the status says in plain words what to do next."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.factories import T0
from volact.client import License, NotInstalled, State
from volact.client.discovery import StaticDNS
from volact.core.durations import DAY
from volact.core.errors import ERROR_CLASSES, remedy_for

from .conftest import World, run_sync

SRC = Path(__file__).resolve().parents[2] / "src" / "volact"


# --- one rule: the next step for the reader's side -----------------------------------------------


def test_the_sdk_and_the_cli_each_get_their_own_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(NotInstalled) as caught:
        License.open(None, tmp_path / "empty")
    error = caught.value
    # An SDK caller is told the call, never a command its app's user cannot type.
    assert str(error) == (
        f"no product is installed in {tmp_path / 'empty'}; install a key first: "
        "`License.from_descriptor(FILE).install_key(KEY)`"
    )
    assert "volact client" not in str(error)
    # A person at the CLI is told the command, never a method.
    status, out, err = run(capsys, "client", "status", "--dir", str(tmp_path / "empty"))
    assert (status, out) == (1, "")
    assert err == (
        f"not_installed: no product is installed in {tmp_path / 'empty'}; install a key first: "
        "`volact client install-key KEY --product-config FILE`\n"
    )
    # --json's error body carries the same words as the line.
    status, out, err = run(capsys, "client", "status", "--dir", str(tmp_path / "empty"), "--json")
    assert json.loads(out)["error"]["message"] == err.split(": ", 1)[1].rstrip("\n")


def _constants(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_no_error_the_sdk_raises_writes_a_command_into_its_message() -> None:
    """A command goes in a NextStep (which has the SDK's form too), not in the sentence."""
    error_names = {cls.__name__ for cls in ERROR_CLASSES.values()} | {"VolactError"}
    offenders = []
    for folder in ("client", "net", "core"):
        for source in sorted((SRC / folder).glob("*.py")):
            tree = ast.parse(source.read_text(encoding="utf-8"))
            for call in ast.walk(tree):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                    continue
                if call.func.id not in error_names:
                    continue
                for arg in call.args:  # the message and details, not next_step=
                    # A command, or a command's flag (` --vendor URL`), is the CLI's form.
                    if any(re.search(r"`volact |\(--[a-z]", t) for t in _constants(arg)):
                        offenders.append(f"{source.name}:{call.lineno}")
    assert offenders == []


# --- messages that sent the user in a circle -----------------------------------------------------


def test_install_key_without_a_descriptor_says_the_key_needs_its_descriptor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "BXRJD-62CDW-PD3BP-J39YR-6JHR8"
    status, _, err = run(capsys, "client", "install-key", key, "--dir", str(tmp_path / "pc"))
    assert status == 1
    assert err.startswith(
        f"not_installed: no product is installed in {tmp_path / 'pc'}, and a key alone does not "
        "say which product it is for; give the product descriptor that ships with the product"
    )
    assert err.rstrip().endswith("`volact client install-key KEY --product-config FILE`")
    assert "install a key first" not in err  # what the user was doing


def test_a_damaged_state_file_names_a_step_that_works(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor = world.tmp / "writer.json"
    descriptor.write_text(world.descriptor.to_file())
    state = str(world.tmp / "pc")
    install = ("client", "install-key", world.descriptor.gvlk, "--product-config", str(descriptor))
    assert run(capsys, *install, "--dir", state)[0] == 0
    (damaged,) = (world.tmp / "pc").glob("*.json")
    damaged.write_text("{not json")
    status, _, err = run(capsys, "client", "status", "--dir", state)
    assert status == 1 and f"the client state file {damaged} is damaged" in err
    # Installing again over the damaged file cannot read it either: that step is a circle.
    assert run(capsys, *install, "--dir", state)[0] == 1
    assert err.rstrip().endswith(
        "move the damaged file away and install the key again: "
        "`volact client install-key KEY --product-config FILE`"
    )
    damaged.unlink()  # what the step says, then its command
    assert run(capsys, *install, "--dir", state)[0] == 0
    assert run(capsys, "client", "status", "--dir", state)[0] == 0


def test_host_unreachable_tells_a_client_user_whom_to_ask() -> None:
    remedy = remedy_for("host_unreachable", "cli")
    assert remedy.startswith("Ask your IT department to check that the activation host is running")
    # `volact host status` is named only as what the host's administrator runs, on the host.
    assert "the host's administrator checks with `volact host status` on the host" in remedy


def test_no_host_found_after_a_dns_timeout_does_not_send_the_user_back_to_diagnose(
    world: World,
) -> None:
    dns = StaticDNS(search=["corp.example"], outcomes={"_volact._tcp.corp.example": "timeout"})
    lic = world.machine("pc1", dns=dns)
    lic.install_key()
    diagnosis = lic.diagnose()
    assert not diagnosis.ok
    assert diagnosis.verdict.startswith("FAILED: no_host_found: ")
    assert "timed out" in diagnosis.verdict
    assert "diagnose" not in diagnosis.verdict  # they are running it
    assert "diagnose" not in remedy_for("no_host_found", "cli")
    # the remedy for its kind: the DNS server that did not answer
    assert "did not answer: check that it is reachable on UDP and TCP 53" in diagnosis.verdict


# --- status: the terms for admins, and a plain next step for everyone -----------------------------


def test_status_says_what_to_do_in_plain_words(world: World) -> None:
    lic = world.machine("pc1")
    assert lic.status().advice == "Install the product key (ask your IT department for it)."
    lic.install_key()
    assert lic.status().advice == (
        "Nothing to do yet: the product activates by itself when this machine is on the "
        "company network (needed within 30 days)."
    )
    lic.renew()  # no host anywhere
    assert lic.status().advice == (
        "Connect to the company network within 30 days so the product can activate; if you "
        "are connected, ask your IT department to check the activation host."
    )
    world.clock.advance(31 * DAY)
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "oob_grace_expired")
    assert status.advice == (
        "Connect to the company network and ask your IT department to check the activation "
        "host; the product is not activated."
    )


def test_out_of_tolerance_says_within_how_many_days(world: World) -> None:
    world.add_host("kms.corp.example:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="kms.corp.example:7688")
    assert lic.activate().advice == "Nothing to do: the product is activated and renews by itself."
    world.network.down.add("kms.corp.example:7688")
    world.clock.now = T0 + (180 + 18) * DAY  # the activation ended 18 days ago
    lic.renew()
    status = lic.status()
    assert (status.state, status.days_left) == (State.OOT_GRACE, 12)
    assert status.advice == (
        "Connect to the company network within 12 days so the product can activate; if you "
        "are connected, ask your IT department to check the activation host."
    )


def test_a_blocked_machine_is_told_to_ask_it(world: World) -> None:
    host = world.add_host("kms.corp.example:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="kms.corp.example:7688")
    cmid = lic.activate().cmid
    assert cmid is not None
    run_sync(host.service.store.block(cmid, world.clock.now))
    attempt = lic.renew()
    assert attempt.error is not None and attempt.error.code == "client_blocked"
    # Blocking is not revocation: it stays activated, and is told that it cannot renew.
    assert lic.status().advice == (
        "Nothing to do for now: the product is activated for 180 more days, but it cannot "
        "renew; ask your IT department: the activation host has blocked this machine."
    )
    world.clock.advance(181 * DAY)
    lic.renew()
    assert lic.status().state is State.OOT_GRACE
    assert lic.status().advice == (
        "Ask your IT department: the activation host has blocked this machine."
    )


def test_the_status_command_shows_the_terms_and_a_what_to_do_line(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    lic = world.machine("pc1")
    lic.install_key()
    world.clock.advance(31 * DAY)
    status = lic.status()
    from volact.cli.client_status import status_lines

    lines = status_lines(status, "Acme", "office-2026")
    state_line = next(line for line in lines if line.startswith("License status:"))
    assert state_line.endswith("notification (not activated; the app may reduce what it offers)")
    assert "notification (notification" not in state_line
    reason = next(line for line in lines if line.startswith("Reason:"))
    assert reason.endswith("oob_grace_expired: the out-of-box grace ran out before an activation")
    assert lines[-1] == f"What to do: {status.advice}"
    assert lic.status().to_dict()["advice"] == status.advice
