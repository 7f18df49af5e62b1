"""`volact client …`: the installed copy's commands (SPEC §7), like Windows' ``slmgr``.

Every command takes ``--dir`` (else ``VOLACT_STATE_DIR``, else the machine-wide folder of
:mod:`volact.paths`) and, where several products are installed,
``--product ID``. Commands that print data take ``--json`` (times in ISO 8601 UTC).

``volact client status`` must start fast (SPEC §12: the whole process within 300 ms), so this
module imports only click at load time; each command imports what it needs, and the status
path never imports httpx, starlette, dnspython or rich.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from volact.cli._output import json_option, print_json
from volact.cli.client_status import status_lines
from volact.cli.client_status import when as _when

if TYPE_CHECKING:
    from volact.client.activation import Attempt
    from volact.client.license import License
    from volact.client.state import MachineSettings
    from volact.client.status import LicenseStatus

F = TypeVar("F", bound=Callable[..., Any])

DIR_HELP = (
    "The client state directory (default: $VOLACT_STATE_DIR, else the machine-wide folder: "
    "/var/lib/volact/client, C:\\ProgramData\\volact\\client on Windows, "
    "/Library/Application Support/volact/client on macOS)."
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


@click.group(short_help="The installed copy: install a key, activate, status, discovery.")
def client() -> None:
    """The client: install a key, activate, report status, find hosts (like slmgr).

    Like slmgr: /ipk is install-key, /ato activate, /dlv and /xpr status, /skms and /ckms
    set-host and clear-host, /skms-domain set-domain, /skhc and /ckhc host-caching, /rearm rearm.
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
        license = _open_for_key(product, directory)
    status = license.install_key(key)
    if as_json:
        print_json(status.to_dict())
        return
    click.echo(
        f"Installed product key ...-{status.partial_key} for {status.product_name} "
        f"({status.product})."
    )
    _show(license, status, False)


def _open_for_key(product: str | None, directory: str | None) -> License:
    """The installed product a key goes to; when there is none, the error says that the key
    needs its product descriptor (not "install a key first", which is what is being done)."""
    from volact.core.errors import NextStep, NotInstalled

    try:
        return _open(product, directory)
    except NotInstalled as error:
        raise NotInstalled(
            f"{error.message}, and a key alone does not say which product it is for",
            error.details,
            next_step=NextStep(
                cli="give the product descriptor that ships with the product (a .json file; "
                "ask its vendor if you cannot find it): "
                "`volact client install-key KEY --product-config FILE`",
                sdk="`License.from_descriptor(FILE).install_key(KEY)`",
            ),
        ) from error


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
        from volact.fileio import write_bytes_atomic

        # 0600: the request holds the MAK, a secret.
        write_bytes_atomic(Path(offline_request), text.encode("utf-8"), mode=0o600)
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
@click.option(
    "--activate",
    is_flag=True,
    help="Make a real activation attempt (counted by the host, recorded, uses a MAK "
    "activation) instead of the read-only check.",
)
@dir_option
@json_option
def diagnose(
    product: str | None,
    vendor_url: str | None,
    activate: bool,
    directory: str | None,
    as_json: bool,
) -> None:
    """Show every step of finding a host: the settings, each DNS query and its answer, each
    host tried and its result, and a verdict with a remedy for the kind of failure. Exits 1 on
    a failure.

    Read-only by default: each host found is asked GET /v1/health, so nothing is activated,
    the machine is not counted, no MAK activation is used and the next retry does not move.
    --activate makes a real activation attempt instead (recorded like `volact client activate`).
    """
    license = _open(product, directory)
    diagnosis = license.diagnose(vendor_url=vendor_url, activate=activate)
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
    from volact.fileio import read_bytes, write_bytes_atomic

    sources = [read_bytes(Path(name), what="request file", limit=4 * 1024 * 1024) for name in files]
    batch = merge_mak_request_files(sources)
    if output:
        write_bytes_atomic(Path(output), batch.encode("utf-8"), mode=0o600)  # holds MAKs
        click.echo(f"Wrote a batch of the requests in {len(files)} file(s) to {output}.")
    else:
        click.echo(batch, nl=False)


# --- run ------------------------------------------------------------------------------------


def _attempt_record(attempt: Attempt) -> tuple[str, dict[str, Any]]:
    """One attempt as a log message and its fields: what happened and when the next is due."""
    from volact.client.status import iso, to_datetime

    status = attempt.status
    next_at = iso(status.next_attempt_at)
    fields: dict[str, Any] = {
        "product": attempt.product,
        "at": iso(to_datetime(attempt.at)),
        "host": attempt.host,
        "state": status.state.value,
        "next_attempt_at": next_at,
    }
    if attempt.error is None:
        until = "permanently" if status.valid_until is None else f"until {iso(status.valid_until)}"
        fields.update(outcome="activated", valid_until=iso(status.valid_until))
        message = (
            f"{attempt.product}: activated by {attempt.host}; licensed {until}; next renewal "
            f"{next_at or 'never'}"
        )
    else:
        fields.update(outcome="failed", code=attempt.error.code, days_left=status.days_left)
        message = (
            f"{attempt.product}: {attempt.error.code}: {attempt.error.message} (state "
            f"{status.state.value}); next attempt {next_at or 'never'}"
        )
    return message, fields


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
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log records at this level and above.",
)
@dir_option
def run(
    products: tuple[str, ...], wake_interval: float, log_level: str, directory: str | None
) -> None:
    """The renewal service in the foreground: activate, renew every renewal interval, retry
    every retry interval after a failure. Logs JSON lines on stderr, as the host does: one per
    attempt, with its outcome and when the next attempt is due. SIGTERM or Ctrl-C stops it."""
    import logging
    import threading

    from volact.client.license import License
    from volact.client.renewal import RenewalLoop
    from volact.client.settings import resolve_state_dir
    from volact.client.state import StateDir
    from volact.clock import system_clock
    from volact.core.errors import VolactError
    from volact.web.runner import configure_logging

    configure_logging(log_level)
    log = logging.getLogger("volact.client.run")
    state_dir = resolve_state_dir(directory)
    state = StateDir(state_dir)
    cache: dict[str, License] = {}
    idle_reported = False

    def report_error(product: str, error: VolactError) -> None:
        log.error(
            "%s: %s: %s",
            product,
            error.code,
            error.text("cli"),
            extra={"fields": {"product": product, "code": error.code}},
        )

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
                    report_error(product, error)
                    continue
            found.append(cache[product])
        if not found and not idle_reported:
            log.warning(
                "no product is installed in %s; waiting",
                state_dir,
                extra={"fields": {"dir": str(state_dir)}},
            )
        idle_reported = not found
        return found

    def on_attempt(attempt: Attempt) -> None:
        message, fields = _attempt_record(attempt)
        level = logging.INFO if attempt.error is None else logging.WARNING
        log.log(level, "%s", message, extra={"fields": fields})

    loop = RenewalLoop(
        licenses,
        clock=system_clock,
        wake_interval=wake_interval,
        on_attempt=on_attempt,
        on_error=report_error,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("renewing in %s", state_dir, extra={"fields": {"dir": str(state_dir)}})
    loop.run(stop)
    log.info("stopped")
