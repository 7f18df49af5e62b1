"""`volact host install-revocations`, `volact host fetch-revocations` and `volact host renew`:
the vendor's revocation list on a host (:mod:`volact.host.revocations`) and certificate renewal
(:mod:`volact.host.certificate_renewal`).

A running host takes up a newer list, or a renewed certificate, within seconds.
"""

from __future__ import annotations

from typing import Any

import click

from volact.cli._output import json_option, print_json
from volact.cli.host import dir_option, resolve_host_dir
from volact.cli.vendor import read_input_file, when

MAX_LIST_FILE_BYTES = 64 * 1024


def _report(revocations: Any, changed: bool, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "host_key": revocations.host_key,
                "sequence": revocations.sequence,
                "issued_at": revocations.issued_at,
                "next_update": revocations.next_update,
                "certificates": len(revocations.certificates),
                "host_keys": len(revocations.host_keys),
                "changed": changed,
            }
        )
        return
    what = "installed" if changed else "kept (the installed list is as new or newer)"
    click.echo(
        f"revocation list {revocations.sequence} {what}: {len(revocations.certificates)} "
        f"certificate(s), {len(revocations.host_keys)} host key(s); issued "
        f"{when(revocations.issued_at)}, next update by {when(revocations.next_update)}"
    )


@click.command("install-revocations")
@click.argument("list_file", metavar="FILE")
@dir_option
@json_option
def install_revocations(list_file: str, directory: str | None, as_json: bool) -> None:
    """Install the vendor's revocation list FILE of this host's key (`volact vendor revocations
    --host-key SERIAL -o FILE`).

    It is verified under the vendor's root keys and replaces the installed list only if it is
    newer (a higher sequence); an older file changes nothing.
    """
    from volact.host import revocations
    from volact.host.identity import HostFiles

    files = HostFiles(resolve_host_dir(directory))
    installed, changed = revocations.install(files, read_input_file(list_file, MAX_LIST_FILE_BYTES))
    _report(installed, changed, as_json)


@click.command("fetch-revocations")
@click.option(
    "--vendor", "vendor_url", metavar="URL", help="The vendor service (default: host.json's)."
)
@dir_option
@json_option
def fetch_revocations(vendor_url: str | None, directory: str | None, as_json: bool) -> None:
    """Fetch the newest revocation list from the vendor service now (a running host with a
    vendor URL also does so every 6 hours)."""
    from volact.host import revocations
    from volact.host.identity import HostFiles

    files = HostFiles(resolve_host_dir(directory))
    installed, changed = revocations.fetch_online(files, vendor_url=vendor_url)
    _report(installed, changed, as_json)


@click.command("renew")
@click.option(
    "--offline-request",
    metavar="FILE",
    help="Write a renewal request file for the vendor instead (`volact vendor fulfil FILE`); "
    "install the answer with `volact host activate --offline-response FILE`.",
)
@click.option(
    "--vendor", "vendor_url", metavar="URL", help="The vendor service (default: host.json's)."
)
@dir_option
@json_option
def renew(
    offline_request: str | None, vendor_url: str | None, directory: str | None, as_json: bool
) -> None:
    """Renew the host certificate now, proving possession of the host key (a running host with
    a vendor URL renews by itself once two thirds of the certificate's life have passed)."""
    from volact.cli.host_certify import _report as report_certificate
    from volact.cli.vendor import write_output
    from volact.clock import system_clock
    from volact.host import certificate_renewal
    from volact.host.identity import HostFiles

    files = HostFiles(resolve_host_dir(directory))
    if offline_request is not None:
        request = certificate_renewal.write_renewal_request(files, now=system_clock())
        write_output(request.to_file(), offline_request)
        if offline_request != "-":
            click.echo(
                f"renewal request written to {offline_request}; give it to the vendor "
                "(`volact vendor fulfil`), then `volact host activate --offline-response FILE`",
                err=True,
            )
        return
    certificate = certificate_renewal.renew_online(files, now=system_clock(), vendor_url=vendor_url)
    report_certificate(certificate, as_json)


def parse_day(text: str, option: str) -> int:
    """A UTC day ``YYYY-MM-DD`` as the Unix time of its start."""
    from datetime import UTC, datetime

    from volact.core.errors import ConfigurationError

    try:
        return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    except ValueError as exc:
        raise ConfigurationError(f"{option} must be a day such as 2026-12-01") from exc


@click.command("usage-report")
@click.option("--from", "start", required=True, metavar="DAY", help="First day (UTC), YYYY-MM-DD.")
@click.option("--to", "end", required=True, metavar="DAY", help="Last day (UTC), YYYY-MM-DD.")
@click.option("-o", "--output", metavar="FILE", help="Write the report here (default: stdout).")
@click.option(
    "--db",
    "database_url",
    metavar="URL",
    help="The host database: sqlite:///PATH or postgresql://… (default: DIR/host.db).",
)
@dir_option
def usage_report(
    start: str, end: str, output: str | None, database_url: str | None, directory: str | None
) -> None:
    """Export the signed usage report of a period for the vendor's true-up.

    It holds the hash-chained count-relevant events signed from --from to the end of --to, the
    signed heads and the signing hosts' certificates, and the distinct clients per group per day
    and per month; the vendor checks it with `volact vendor usage verify FILE`.
    """
    from volact.cli.vendor import write_output
    from volact.clock import system_clock
    from volact.host.identity import HostFiles
    from volact.host.usage import export_report

    files = HostFiles(resolve_host_dir(directory))
    report = export_report(
        files,
        database_url or files.database_url,
        start=parse_day(start, "--from"),
        end=parse_day(end, "--to") + 86400,
        now=system_clock(),
    )
    write_output(report.to_file(), output)
    if output not in (None, "-"):
        click.echo(
            f"usage report: events {report.first_seq}–{report.last_seq}, "
            f"{len(report.heads)} signed head(s), written to {output}",
            err=True,
        )


COMMANDS = [install_revocations, fetch_revocations, renew, usage_report]
