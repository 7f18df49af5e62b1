"""`volact client …`: the installed copy's commands (SPEC §7), like Windows' ``slmgr``.

Every command takes ``--dir`` (else ``VOLACT_STATE_DIR``, else ``/var/lib/volact/client`` when
writable, else the user's data directory) and, where several products are installed,
``--product ID``. Commands that print data take ``--json`` (times in ISO 8601 UTC).

``volact client status`` must start fast (SPEC §12: the whole process within 300 ms), so this
module imports only click at load time; each command imports what it needs, and the status
path never imports httpx, starlette, dnspython or rich.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from volact.cli._output import json_option, print_json

if TYPE_CHECKING:
    from volact.client.activation import Attempt
    from volact.client.license import License
    from volact.client.state import MachineSettings
    from volact.client.status import LicenseStatus

F = TypeVar("F", bound=Callable[..., Any])

DIR_HELP = (
    "The client state directory (default: $VOLACT_STATE_DIR, else /var/lib/volact/client "
    "when writable, else the user's data directory)."
)


def dir_option(function: F) -> F:
    return click.option("--dir", "directory", metavar="DIR", help=DIR_HELP)(function)


def product_option(function: F) -> F:
    return click.option(
        "--product",
        "product",
        metavar="ID",
        help="The installed product (needed when several are installed).",
    )(function)


def _open(product: str | None, directory: str | None) -> License:
    from volact.client.license import License

    return License.open(product, directory)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _days(count: int | None) -> str:
    if count is None:
        return ""
    return f" ({count} day{'s' if count != 1 else ''} left)"


def _span(seconds: int | None) -> str:
    from volact.core.durations import humanize

    return "-" if seconds is None else humanize(seconds)


_STATE_WORDS = {
    "unlicensed": "no product key installed",
    "oob_grace": "out-of-box grace: not activated yet",
    "licensed": "activated",
    "oot_grace": "out-of-tolerance grace: the activation ran out and was not renewed",
    "notification": "notification: not activated; the app may reduce what it offers",
}
_REASON_WORDS = {
    "oob_grace_expired": "the out-of-box grace ran out before an activation",
    "oot_grace_expired": "the out-of-tolerance grace ran out without a renewal",
    "clock_tampered": "the system clock went backwards; correct it, then activate",
    "invalid_ticket": "the stored activation did not verify, so it does not count",
    "invalid_host_certificate": "the stored activation's host certificate did not verify",
    "host_revoked": "the host that gave the activation is on the vendor's revocation list",
}
_CHANNEL_WORDS = {
    "gvlk": "GVLK (volume activation through an activation host)",
    "mak": "MAK (activation with the vendor, online or by files)",
}


def status_lines(status: LicenseStatus, vendor_name: str, group: str) -> list[str]:
    """The human form of a status, like ``slmgr /dlv`` and ``/xpr`` together."""
    rows: list[tuple[str, str]] = [
        ("Name", status.product_name),
        ("Product", f"{status.product} (group {group}, vendor {vendor_name})"),
        ("Partial product key", status.partial_key or "-"),
        ("Channel", _CHANNEL_WORDS.get(status.channel or "", status.channel or "-")),
        ("License status", f"{status.state.value} ({_STATE_WORDS[status.state.value]})"),
    ]
    if status.reason:
        rows.append(("Reason", f"{status.reason}: {_REASON_WORDS.get(status.reason, '')}"))
    if status.activation_error:
        rows.append(("Verification", status.activation_error))
    if status.state.value == "licensed":
        if status.valid_until is None:
            rows.append(("Valid until", "permanently activated"))
        else:
            warning = " (expires soon: renew)" if status.expiry_warning else ""
            rows.append(
                ("Valid until", _when(status.valid_until) + _days(status.days_left) + warning)
            )
    elif status.grace_ends_at is not None:
        rows.append(("Grace ends", _when(status.grace_ends_at) + _days(status.days_left)))
    if status.valid_until is not None and status.state.value != "licensed":
        rows.append(("Activation ended", _when(status.valid_until)))
    if status.host or status.host_id:
        rows.append(("Activated by", f"{status.host or '-'} (id {status.host_id or '-'})"))
        rows.append(("Activated at", _when(status.activated_at)))
    rows.append(("Client machine ID (CMID)", status.cmid or "-"))
    if status.channel == "gvlk":
        rows.append(("Renewal interval", _span(status.renewal_interval)))
        rows.append(("Retry interval", _span(status.retry_interval)))
    if status.last_attempt_at is None:
        rows.append(("Last attempt", "none yet"))
    else:
        outcome = "succeeded" if status.last_error is None else f"failed: {status.last_error}"
        via = f" via {status.last_host}" if status.last_host else ""
        rows.append(("Last attempt", f"{_when(status.last_attempt_at)}: {outcome}{via}"))
    rows.append(("Next attempt", _when(status.next_attempt_at)))
    if status.rearms_left is not None:
        rows.append(("Rearms left", str(status.rearms_left)))
    width = max(len(label) for label, _ in rows) + 1
    return [f"{(label + ':').ljust(width)} {value}" for label, value in rows]


def _show(license: License, status: LicenseStatus, as_json: bool) -> None:
    if as_json:
        print_json(status.to_dict())
        return
    for line in status_lines(status, license.descriptor.vendor_name, license.descriptor.group):
        click.echo(line)


def _settings_lines(settings: MachineSettings, scope: str) -> list[str]:
    return [
        f"Settings ({scope}):",
        f"  activation host: {settings.manual_host or 'none (DNS discovery)'}",
        f"  host caching:    {'on' if settings.host_caching else 'off'}",
        f"  domains:         {', '.join(settings.domains) or 'none (resolver search list)'}",
        f"  DNS server:      {settings.dns_server or 'system resolver'}",
    ]


def _change_settings(
    directory: str | None, product: str | None, as_json: bool, **changes: Any
) -> None:
    from volact.client.settings import update_settings

    settings = update_settings(directory, product=product, **changes)
    if as_json:
        print_json({"product": product, "settings": settings.to_dict()})
        return
    scope = f"product {product}" if product else "every product on this machine"
    for line in _settings_lines(settings, scope):
        click.echo(line)


# --- the group ----------------------------------------------------------------------------------


@click.group()
def client() -> None:
    """The client: install a key, activate, report status, find hosts (like slmgr).

    \b
    install-key KEY --product-config FILE   install a GVLK or a MAK        (slmgr /ipk)
    activate                                activate or renew now          (/ato)
    status                                  show the license status        (/dlv, /xpr)
    set-host HOST[:PORT] | clear-host       use this activation host       (/skms, /ckms)
    set-domain DOMAIN | clear-domain        find hosts in this DNS domain  (/skms-domain)
    set-dns-server IP[:PORT] | clear-dns-server   ask this DNS server
    host-caching on|off                     remember the last host         (/skhc, /ckhc)
    rearm                                   restart the grace, new CMID    (/rearm)
    diagnose                                show discovery step by step
    run                                     the renewal service (foreground)
    """


@client.command("install-key")
@click.argument("key")
@click.option(
    "--product-config",
    "product_config",
    metavar="FILE",
    help="The product descriptor the vendor ships (needed for a product not installed yet).",
)
@product_option
@dir_option
@json_option
def install_key(
    key: str,
    product_config: str | None,
    product: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Install a product KEY: the product's GVLK (volume activation) or a MAK.

    Installing another key on an installed product keeps its CMID and install time and drops
    its activation; installing the same key again changes nothing.
    """
    from volact.client.license import License

    if product_config is not None:
        license = License.from_descriptor(product_config, directory)
        if product is not None and product != license.product:
            from volact.core.errors import BadRequest

            raise BadRequest(
                f"--product {product} does not match the descriptor's product {license.product}"
            )
    else:
        license = _open(product, directory)
    status = license.install_key(key)
    if as_json:
        print_json(status.to_dict())
        return
    click.echo(
        f"Installed product key ...-{status.partial_key} for {status.product_name} "
        f"({status.product})."
    )
    _show(license, status, False)


@client.command()
@product_option
@click.option(
    "--vendor",
    "vendor_url",
    metavar="URL",
    help="MAK: the vendor's activation service (overrides the descriptor's URL).",
)
@click.option(
    "--offline-request",
    "offline_request",
    metavar="FILE",
    help="MAK without internet: write a request file to carry to the vendor ('-': stdout).",
)
@click.option(
    "--offline-response",
    "offline_response",
    metavar="FILE",
    help="MAK without internet: install the vendor's response file.",
)
@dir_option
@json_option
def activate(
    product: str | None,
    vendor_url: str | None,
    offline_request: str | None,
    offline_response: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Activate (or renew) now: through an activation host for a GVLK, with the vendor for a
    MAK (online, or offline with a request file and a response file)."""
    from volact.core.errors import BadRequest

    if offline_request and offline_response:
        raise BadRequest("give --offline-request or --offline-response, not both")
    license = _open(product, directory)
    if offline_request:
        text = license.offline_request()
        if offline_request == "-":
            click.echo(text, nl=False)
            return
        from volact.fileio import write_atomic

        write_atomic(Path(offline_request), text)
        if as_json:
            print_json({"product": license.product, "request_file": offline_request})
        else:
            click.echo(
                f"Wrote the offline activation request to {offline_request}. Take it to a "
                "machine with internet access, have the vendor answer it, and install the "
                "answer with --offline-response FILE."
            )
        return
    if offline_response:
        from volact.fileio import read_bytes

        data = read_bytes(Path(offline_response), what="response file", limit=4 * 1024 * 1024)
        status = license.install_offline_response(data)
    else:
        status = license.activate(vendor_url=vendor_url)
    if as_json:
        print_json(status.to_dict())
        return
    until = "permanently" if status.valid_until is None else f"until {_when(status.valid_until)}"
    via = f" by {status.host}" if status.host and status.host != "offline" else ""
    if offline_response:
        via = " from the vendor's response file"
    click.echo(f"Product activated successfully{via}: {status.product} is licensed {until}.")


@client.command()
@product_option
@dir_option
@json_option
def status(product: str | None, directory: str | None, as_json: bool) -> None:
    """Show the license status (offline): state, reason, validity or grace, host, CMID."""
    license = _open(product, directory)
    _show(license, license.status(), as_json)


@client.command("set-host")
@click.argument("host", metavar="HOST[:PORT]")
@product_option
@dir_option
@json_option
def set_host(host: str, product: str | None, directory: str | None, as_json: bool) -> None:
    """Use this activation host (default port 7688); turns DNS discovery off.

    Without --product it applies to every product on this machine.
    """
    _change_settings(directory, product, as_json, manual_host=host)


@client.command("clear-host")
@product_option
@dir_option
@json_option
def clear_host(product: str | None, directory: str | None, as_json: bool) -> None:
    """Forget the activation host set by hand; find hosts by DNS again."""
    _change_settings(directory, product, as_json, manual_host=None)


@client.command("set-domain")
@click.argument("domains", nargs=-1, required=True, metavar="DOMAIN...")
@product_option
@dir_option
@json_option
def set_domain(
    domains: tuple[str, ...], product: str | None, directory: str | None, as_json: bool
) -> None:
    """Look for activation hosts (SRV records) in these DNS domains, in this order."""
    _change_settings(directory, product, as_json, domains=list(domains))


@client.command("clear-domain")
@product_option
@dir_option
@json_option
def clear_domain(product: str | None, directory: str | None, as_json: bool) -> None:
    """Use the resolver's search domains (else the machine's DNS suffix) again."""
    _change_settings(directory, product, as_json, domains=None)


@client.command("set-dns-server")
@click.argument("server", metavar="IP[:PORT]")
@product_option
@dir_option
@json_option
def set_dns_server(server: str, product: str | None, directory: str | None, as_json: bool) -> None:
    """Ask this DNS server (not the system resolver) for SRV records and host addresses."""
    _change_settings(directory, product, as_json, dns_server=server)


@client.command("clear-dns-server")
@product_option
@dir_option
@json_option
def clear_dns_server(product: str | None, directory: str | None, as_json: bool) -> None:
    """Ask the system resolver again."""
    _change_settings(directory, product, as_json, dns_server=None)


@client.command("host-caching")
@click.argument("setting", type=click.Choice(["on", "off"]), metavar="on|off")
@product_option
@dir_option
@json_option
def host_caching(setting: str, product: str | None, directory: str | None, as_json: bool) -> None:
    """Remember the last host that answered and try it first (on by default)."""
    _change_settings(directory, product, as_json, host_caching=setting == "on")


@client.command()
@product_option
@dir_option
@json_option
def rearm(product: str | None, directory: str | None, as_json: bool) -> None:
    """Restart the out-of-box grace with a new CMID (limited; not while licensed)."""
    license = _open(product, directory)
    status = license.rearm()
    if as_json:
        print_json(status.to_dict())
        return
    click.echo(
        f"Rearmed {status.product}: new CMID {status.cmid}; out-of-box grace until "
        f"{_when(status.grace_ends_at)}; {status.rearms_left} rearm(s) left."
    )


@client.command()
@product_option
@click.option("--vendor", "vendor_url", metavar="URL", help="MAK: the vendor's service URL.")
@dir_option
@json_option
def diagnose(
    product: str | None, vendor_url: str | None, directory: str | None, as_json: bool
) -> None:
    """Activate now and show every step: the settings, each DNS query and its answer, each
    host tried and its result, and a verdict with a remedy. Exits 1 when activation failed."""
    license = _open(product, directory)
    diagnosis = license.diagnose(vendor_url=vendor_url)
    if as_json:
        print_json(diagnosis.to_dict())
    else:
        click.echo(f"product: {license.product} ({license.descriptor.product_name})")
        click.echo(f"channel: {diagnosis.attempt.status.channel}; CMID {license.status().cmid}")
        if diagnosis.attempt.trace is None and diagnosis.attempt.host:
            click.echo(f"vendor service: {diagnosis.attempt.host}")
        for line in diagnosis.lines:
            click.echo(line)
        click.echo(f"verdict: {diagnosis.verdict}")
    if not diagnosis.ok:
        sys.exit(1)


@client.command("merge-requests")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--output", "-o", metavar="FILE", help="Write the batch here (default: stdout).")
def merge_requests(files: tuple[str, ...], output: str | None) -> None:
    """MAK offline, for the admin: merge machines' request files (and batches) into one batch
    file for the vendor; every machine then installs the one response file."""
    from volact.client.mak import merge_mak_request_files
    from volact.fileio import read_bytes, write_atomic

    sources = [read_bytes(Path(name), what="request file", limit=4 * 1024 * 1024) for name in files]
    batch = merge_mak_request_files(sources)
    if output:
        write_atomic(Path(output), batch)
        click.echo(f"Wrote a batch of the requests in {len(files)} file(s) to {output}.")
    else:
        click.echo(batch, nl=False)


# --- run ------------------------------------------------------------------------------------


def _stamp(at: int) -> str:
    from volact.client.status import iso, to_datetime

    return iso(to_datetime(at)) or ""


def _attempt_line(attempt: Attempt) -> str:
    from volact.client.status import iso

    status = attempt.status
    if attempt.error is None:
        until = "permanently" if status.valid_until is None else f"until {iso(status.valid_until)}"
        return (
            f"{_stamp(attempt.at)} {attempt.product}: activated by {attempt.host}; licensed "
            f"{until}; next renewal {iso(status.next_attempt_at) or 'never'}"
        )
    return (
        f"{_stamp(attempt.at)} {attempt.product}: {attempt.error.code}: "
        f"{attempt.error.message} (state {status.state.value})"
    )


@client.command()
@click.option(
    "--product",
    "products",
    metavar="ID",
    multiple=True,
    help="Renew only this product (repeatable; default: every installed product).",
)
@click.option(
    "--wake-interval",
    type=click.FloatRange(min=0.01),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Longest sleep between checks of the clock and the state files.",
)
@dir_option
def run(products: tuple[str, ...], wake_interval: float, directory: str | None) -> None:
    """The renewal service in the foreground: activate, renew every renewal interval, retry
    every retry interval after a failure; one line per attempt. SIGTERM or Ctrl-C stops it."""
    import threading

    from volact.client.license import License
    from volact.client.renewal import RenewalLoop
    from volact.client.settings import resolve_state_dir
    from volact.client.state import StateDir
    from volact.clock import system_clock
    from volact.core.errors import VolactError

    state_dir = resolve_state_dir(directory)
    state = StateDir(state_dir)
    cache: dict[str, License] = {}
    idle_reported = False

    def licenses() -> list[License]:
        nonlocal idle_reported
        wanted = list(products) or state.products()
        for gone in set(cache) - set(wanted):
            del cache[gone]
        found = []
        for product in wanted:
            if product not in cache:
                try:
                    cache[product] = License.open(product, state_dir)
                except VolactError as error:
                    _say(f"{_stamp(system_clock())} {product}: {error.code}: {error.message}")
                    continue
            found.append(cache[product])
        if not found and not idle_reported:
            _say(f"{_stamp(system_clock())} no product is installed in {state_dir}; waiting")
        idle_reported = not found
        return found

    def on_error(product: str, error: VolactError) -> None:
        _say(f"{_stamp(system_clock())} {product}: {error.code}: {error.message}")

    loop = RenewalLoop(
        licenses,
        clock=system_clock,
        wake_interval=wake_interval,
        on_attempt=lambda attempt: _say(_attempt_line(attempt)),
        on_error=on_error,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    _say(f"{_stamp(system_clock())} volact client run: renewing in {state_dir}")
    loop.run(stop)
    _say(f"{_stamp(system_clock())} volact client run: stopped")


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()
