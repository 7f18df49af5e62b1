"""examples/writer_app.py as a real process: against a real `volact host serve`, and months
later under libfaketime (each app run at a frozen time; the host follows a timestamp file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.conftest import FakeTime, ServedProcess, make_host_dir, serve_host
from tests.factories import T0, Vendor
from tests.ports import free_port
from volact.core.durations import DAY
from volact.core.policy import GroupPolicy

from .conftest import WriterApp

pytestmark = pytest.mark.slow

READ_ONLY = 3  # the app's exit status when it refuses to save


def at(day: float) -> int:
    return T0 + int(day * DAY)


def test_a_licensed_app_saves_warns_before_expiry_and_is_read_only_after_the_graces(
    tmp_path: Path, vendor: Vendor, app: WriterApp, processes: list[ServedProcess]
) -> None:
    clock = FakeTime(tmp_path / "host-time", T0)
    port = free_port()
    host_dir = make_host_dir(vendor, tmp_path / "host", policy=GroupPolicy(threshold=1))
    serve_host(processes, host_dir.directory, port, clock.env())
    app.volact("set-host", f"127.0.0.1:{port}", at=T0)  # what the admin (or DNS) provides

    first = app.run("--activate", "save", "doc.txt", "hello", at=T0)
    assert first.returncode == 0, first.stderr
    assert "installed the volume license key" in first.stderr  # the first run installs the GVLK
    assert f"activated by 127.0.0.1:{port}: licensed until 2027-07-14" in first.stderr
    assert "saved doc.txt" in first.stderr
    assert "READ-ONLY" not in first.stderr

    # A session that renews in the background: the licence is checked before each save.
    session = app.run("shell", at=at(1), stdin="save doc.txt from-shell\nstatus\nquit\n")
    assert session.returncode == 0, session.stderr
    assert "state:    licensed" in session.stdout

    # 20 days before the activation ends: a warning, everything still works (status is offline).
    warned = app.run("status", at=at(160))
    assert warned.returncode == 0, warned.stderr
    assert "ends in 20 day(s) (2027-07-14)" in warned.stderr
    assert "state:    licensed" in warned.stdout

    # The activation ran out (no host renewed it): out-of-tolerance grace, still editable.
    late = app.run("save", "doc.txt", "more", at=at(185))
    assert late.returncode == 0, late.stderr
    assert "has ended: 25 day(s) left to renew it" in late.stderr

    # The OOT grace ran out: notification, the editor is read-only; viewing still works.
    refused = app.run("save", "doc.txt", "too late", at=at(211))
    assert refused.returncode == READ_ONLY
    assert "READ-ONLY MODE" in refused.stderr and "(oot_grace_expired)" in refused.stderr
    assert "cannot save doc.txt" in refused.stderr
    viewed = app.run("view", "doc.txt", at=at(211))
    assert viewed.returncode == 0, viewed.stderr
    assert viewed.stdout == "hello\nfrom-shell\nmore\n"


def test_an_app_never_activated_becomes_read_only_after_its_out_of_box_grace(
    app: WriterApp,
) -> None:
    installed = app.run("status", at=T0)
    assert installed.returncode == 0, installed.stderr
    assert "30 day(s) left to activate" in installed.stderr
    assert "state:    oob_grace" in installed.stdout

    during = app.run("save", "doc.txt", "draft", at=at(25))
    assert during.returncode == 0, during.stderr
    assert "5 day(s) left to activate" in during.stderr

    # Day 31: the 30 days of out-of-box grace are over.
    refused = app.run("save", "doc.txt", "final", at=at(31))
    assert refused.returncode == READ_ONLY
    assert "READ-ONLY MODE" in refused.stderr and "(oob_grace_expired)" in refused.stderr
    assert (app.workdir / "doc.txt").read_text() == "draft\n"
    viewed = app.run("view", "doc.txt", at=at(31))
    assert (viewed.returncode, viewed.stdout) == (0, "draft\n")

    # Activating fails with a typed error (nothing listens there); the app reports its code
    # and goes on, still read-only.
    app.volact("set-host", f"127.0.0.1:{free_port()}", at=at(31))
    failed = app.run("--activate", "status", at=at(31))
    assert failed.returncode == 0, failed.stderr
    assert "activation failed: host_unreachable: " in failed.stderr
    assert "volact explain host_unreachable" in failed.stderr
    assert "state:    notification (oob_grace_expired)" in failed.stdout
    assert "editing:  read-only" in failed.stdout
    assert "Traceback" not in failed.stderr


def test_a_descriptor_that_does_not_verify_is_one_clear_error(app: WriterApp) -> None:
    app.descriptor.write_text(app.descriptor.read_text().replace('"v4.public.', '"v4.public.x'))
    done = app.run("status", at=T0)
    assert done.returncode == 1
    assert done.stderr.startswith("writer: bad_request: ")
    assert "Traceback" not in done.stderr
