#!/usr/bin/env python3
"""Acme Writer: a tiny text "editor" that shows how an app embeds the volact client SDK.

::

    python examples/writer_app.py --descriptor writer.json status
    python examples/writer_app.py --descriptor writer.json save notes.txt "some text"
    python examples/writer_app.py --descriptor writer.json view notes.txt
    python examples/writer_app.py --descriptor writer.json --activate save notes.txt "more"
    python examples/writer_app.py --descriptor writer.json shell      # renews in the background

What it shows (docs/integration.md explains each step):

* ``License.from_descriptor()`` with the descriptor the vendor ships inside the app; the state
  directory is ``--state-dir``, else ``VOLACT_STATE_DIR``, else volact's default;
* the first run installs the descriptor's GVLK (what a volume installer does);
* ``status()`` at start-up: offline and fast, so it runs before every command;
* a banner in the grace periods and in the last 30 days of an activation;
* reduced functionality in ``notification`` (and with no key installed): the editor becomes
  read-only: ``save`` refuses with exit status 3, ``view`` and ``status`` still work;
* ``--activate``: ``activate()`` and its typed errors (``err.code``), reported and survived;
* ``shell``: a long-running session with ``start_renewal()``, checking ``status()`` before
  every save.

Exit status: 0 done, 1 error (bad descriptor, unreadable file, unusable state directory), 2 bad
usage, 3 refused because the editor is read-only.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path

from volact.client import (
    Attempt,
    CountInsufficient,
    HostUnreachable,
    InvalidHostCertificate,
    License,
    LicenseStatus,
    NoHostFound,
    StorageError,
    TimeSkew,
    VolactError,
)

APP = "writer"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_READ_ONLY = 3

# What the app tells its user in `notification`, by the status's reason.
NOTIFICATION_TEXT = {
    "oob_grace_expired": "it was never activated within its grace period",
    "oot_grace_expired": "its activation ran out and could not be renewed",
    "clock_tampered": "the system clock was set back; correct the clock, then activate",
}


def say(message: str) -> None:
    """Messages for the user go to stderr, so that `view` prints only the document."""
    print(f"{APP}: {message}", file=sys.stderr)


def day(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d")


def read_only(status: LicenseStatus) -> bool:
    """The app's decision: full functionality in every state but `notification` and no key."""
    return not status.usable


def banner(status: LicenseStatus) -> str | None:
    """One line for the user about the licence, or None when there is nothing to say."""
    name = status.product_name
    if status.state == "oob_grace":
        return (
            f"{name} is not activated yet: {status.days_left} day(s) left to activate "
            f"(until {day(status.grace_ends_at)})"
        )
    if status.state == "oot_grace":
        return (
            f"the activation of {name} has ended: {status.days_left} day(s) left to renew it "
            f"(until {day(status.grace_ends_at)}); connect to the company network"
        )
    if status.state == "licensed" and status.expiry_warning:
        return (
            f"the activation of {name} ends in {status.days_left} day(s) "
            f"({day(status.valid_until)}); connect to the company network to renew it"
        )
    if status.state == "notification":
        why = NOTIFICATION_TEXT.get(status.reason or "", "its licence is not valid")
        return f"READ-ONLY MODE: {name} is not activated: {why} ({status.reason})"
    if status.state == "unlicensed":
        return f"READ-ONLY MODE: no product key is installed for {name}"
    return None


def describe_failure(error: VolactError) -> str:
    """A typed activation error, in words for the user; ``error.code`` is the stable part."""
    if isinstance(error, CountInsufficient):
        details = error.details
        return (
            f"not enough machines have asked the activation host yet "
            f"({details.get('count')} of {details.get('threshold')}); the app will try again"
        )
    if isinstance(error, NoHostFound):
        return "no activation host was found; ask your administrator (volact client diagnose)"
    if isinstance(error, HostUnreachable):
        return "no activation host answered; check the network"
    if isinstance(error, InvalidHostCertificate):
        return "the activation host is not certified by Acme; it was not used"
    if isinstance(error, TimeSkew):
        return "this machine's clock is wrong; correct it, then activate again"
    return error.message


def try_activate(license_: License) -> None:
    """Activate now; a failure is reported and the app goes on in its current state."""
    try:
        status = license_.activate()
    except VolactError as error:
        say(f"activation failed: {error.code}: {describe_failure(error)}")
        say(f"  ({error.message}; `volact explain {error.code}` says more)")
        return
    until = "permanently" if status.valid_until is None else f"until {day(status.valid_until)}"
    say(f"activated by {status.host}: licensed {until}")


def save(license_: License, path: Path, text: str) -> int:
    status = license_.status()  # cheap: check again right before the protected action
    if read_only(status):
        say(f"cannot save {path}: the editor is read-only ({status.reason or status.state})")
        say("  activate the product: run again with --activate, or ask your administrator")
        return EXIT_READ_ONLY
    with path.open("a", encoding="utf-8") as document:
        document.write(text + "\n")
    say(f"saved {path}")
    return EXIT_OK


def view(path: Path) -> int:
    try:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    except OSError as error:
        say(f"cannot read {path}: {error.strerror}")
        return EXIT_ERROR
    return EXIT_OK


def show_status(status: LicenseStatus) -> int:
    print(f"product:  {status.product_name} ({status.product})")
    print(f"state:    {status.state}" + (f" ({status.reason})" if status.reason else ""))
    if status.valid_until is not None:
        print(f"valid:    until {day(status.valid_until)}")
    if status.grace_ends_at is not None:
        print(f"grace:    until {day(status.grace_ends_at)}")
    print(f"editing:  {'read-only' if read_only(status) else 'enabled'}")
    return EXIT_OK


def shell(license_: License) -> int:
    """An interactive session: renewal runs in a background thread the whole time."""

    def on_attempt(attempt: Attempt) -> None:
        if attempt.error is None:
            say(f"renewed by {attempt.host}")
        else:
            say(f"renewal failed: {attempt.error.code} (will retry)")

    say("commands: save FILE TEXT | view FILE | status | quit")
    code = EXIT_OK
    with license_.start_renewal(on_attempt=on_attempt):
        for line in sys.stdin:
            words = shlex.split(line)
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "save" and len(words) >= 3:
                code = save(license_, Path(words[1]), " ".join(words[2:]))
            elif words[0] == "view" and len(words) == 2:
                code = view(Path(words[1]))
            elif words[0] == "status":
                code = show_status(license_.status())
            else:
                say(f"unknown command: {line.strip()}")
    return code


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="writer_app.py", description=__doc__.split("\n")[0])
    parser.add_argument("--descriptor", required=True, help="the product descriptor file")
    parser.add_argument("--state-dir", help="licence state (default: $VOLACT_STATE_DIR)")
    parser.add_argument("--activate", action="store_true", help="activate (or renew) first")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="show the licence status")
    saving = commands.add_parser("save", help="append TEXT to FILE (not in read-only mode)")
    saving.add_argument("file", type=Path)
    saving.add_argument("text")
    viewing = commands.add_parser("view", help="print FILE (always allowed)")
    viewing.add_argument("file", type=Path)
    commands.add_parser("shell", help="an interactive session that renews in the background")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        license_ = License.from_descriptor(args.descriptor, args.state_dir)
        status = license_.status()
        if status.state == "unlicensed":
            # A volume installer installs the GVLK; this example does it on its first run.
            try:
                status = license_.install_key()
                say(f"installed the volume license key ...-{status.partial_key}")
            except StorageError as error:  # e.g. a system-wide directory this user cannot write
                say(f"cannot install the product key: {error}")
        if args.activate:
            try_activate(license_)
            status = license_.status()
    except VolactError as error:  # a bad descriptor, an unusable state directory, …
        say(f"{error.code}: {error}")
        return EXIT_ERROR
    message = banner(status)
    if message is not None:
        say(message)
    if args.command == "status":
        return show_status(status)
    if args.command == "view":
        return view(args.file)
    if args.command == "save":
        return save(license_, args.file, args.text)
    return shell(license_)


if __name__ == "__main__":
    sys.exit(main())
