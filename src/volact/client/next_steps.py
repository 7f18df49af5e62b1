"""The next steps a client's errors name, each said twice (a
:class:`~volact.core.errors.NextStep`): the ``volact client`` command for a person at the CLI,
and the ``License`` call for a vendor's app.

Messages raised by the SDK give one of these as ``next_step=`` instead of writing a command into
the sentence, so that an app's user is never told to type a command the app does not have, and a
person at the CLI is never told to call a method.
"""

from __future__ import annotations

from volact.core.errors import NextStep

__all__ = [
    "INSTALL_KEY",
    "INSTALL_MAK",
    "NAME_PRODUCT",
    "OFFLINE_REQUEST_FIRST",
    "REINSTALL_KEY",
    "SET_HOST_OR_DOMAIN",
    "STATE_NOT_WRITABLE",
    "VENDOR_URL_OR_OFFLINE",
]

INSTALL_KEY = NextStep(
    cli="install a key first: `volact client install-key KEY --product-config FILE`",
    sdk="install a key first: `License.from_descriptor(FILE).install_key(KEY)`",
)
NAME_PRODUCT = NextStep(
    cli="name one with --product ID",
    sdk="name one: `License.open(PRODUCT)`",
)
# A damaged state file cannot be installed over (installing reads it first): it goes first.
REINSTALL_KEY = NextStep(
    cli="move the damaged file away and install the key again: "
    "`volact client install-key KEY --product-config FILE`",
    sdk="remove it and install the key again: `License.from_descriptor(FILE)`, then "
    "`.uninstall()` and `.install_key(KEY)`",
)
INSTALL_MAK = NextStep(
    cli="install the MAK with `volact client install-key MAK`",
    sdk="install the MAK with `License.install_key(MAK)`",
)
OFFLINE_REQUEST_FIRST = NextStep(
    cli="make one first: `volact client activate --offline-request FILE`",
    sdk="make one first: `License.offline_request()`",
)
VENDOR_URL_OR_OFFLINE = NextStep(
    cli="give one (`volact client activate --vendor URL`) or activate offline "
    "(`volact client activate --offline-request FILE`)",
    sdk="give one (`License.activate(vendor_url=URL)`) or activate offline "
    "(`License.offline_request()`)",
)
SET_HOST_OR_DOMAIN = NextStep(
    cli="set one with `volact client set-host HOST` or `volact client set-domain DOMAIN`",
    sdk="configure one: `License.configure(manual_host=HOST)` or "
    "`License.configure(domains=[DOMAIN])`",
)
STATE_NOT_WRITABLE = NextStep(
    cli="install the key and activate as an administrator (the renewal service `volact client "
    "run` keeps it current), give the users write access to it, or pass another --dir",
    sdk="install the key and activate as an administrator (the renewal service `volact client "
    "run` keeps it current), give the app's users write access to it, or pass another "
    "`License(state_dir=…)`",
)
