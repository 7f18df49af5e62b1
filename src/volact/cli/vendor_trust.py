"""`volact vendor revoke`, `volact vendor revocations` and `volact vendor certificate-lifetime`:
the vendor's revocation list and its certificate policy.

They belong to the ``vendor`` group (:mod:`volact.cli.vendor`) and are added to it when it is
loaded. The rules are :mod:`volact.authority.revocations`; the list's format is
:mod:`volact.core.revocation`.
"""

from __future__ import annotations

from typing import Any

import click

from volact.cli._output import json_option, print_json, print_table
from volact.cli.vendor import DURATION, dir_option, opened, when, write_output
from volact.core.errors import ConfigurationError
from volact.core.revocation import REVOKE_REASONS


def _list_json(revocations: Any) -> dict[str, Any]:
    return {
        "host_key": revocations.host_key,
        "sequence": revocations.sequence,
        "issued_at": revocations.issued_at,
        "next_update": revocations.next_update,
        "certificates": [entry.to_dict() for entry in revocations.certificates],
        "host_keys": [entry.to_dict() for entry in revocations.host_keys],
    }


def _print_list(revocations: Any) -> None:
    click.echo(
        f"revocation list {revocations.sequence} of host key {revocations.host_key}: issued "
        f"{when(revocations.issued_at)}, "
        f"next update by {when(revocations.next_update)}"
    )
    rows = [
        [e.cert_id, "certificate", e.reason, when(e.revoked_at)] for e in revocations.certificates
    ]
    rows += [[e.serial, "host key", e.reason, when(e.revoked_at)] for e in revocations.host_keys]
    if rows:
        print_table(["ID", "WHAT", "REASON", "SINCE"], rows)


@click.command()
@click.argument("cert_id", metavar="CERT", required=False)
@click.option("--host-key", metavar="KEY|SERIAL", help="Revoke a host key and all its hosts.")
@click.option(
    "--reason",
    type=click.Choice(REVOKE_REASONS),
    required=True,
    help="Why (recorded, and named in the list).",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Also write the new revocation list file (for hosts without the vendor service).",
)
@dir_option
@json_option
def revoke(
    cert_id: str | None,
    host_key: str | None,
    reason: str,
    output: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Revoke a host certificate (CERT, its id) or a host key as a whole (--host-key).

    A new revocation list of the host key concerned (each host key has its own) is signed at
    once. Hosts fetch it from the vendor service or are given
    its file (`volact host install-revocations FILE`); clients learn it from any host of the
    customer that has it, and refuse the revoked hosts (`host_revoked`).
    """
    if (cert_id is None) == (host_key is None):
        raise ConfigurationError("give either a certificate id (CERT) or --host-key, not both")
    with opened(directory) as v:
        ended = 1
        if host_key is not None:
            revocations, ended = v.revoke_host_key(host_key, reason)
        else:
            assert cert_id is not None
            revocations = v.revoke_certificate(cert_id, reason)
    if output is not None:
        write_output(revocations.to_file(), output)
    if as_json:
        print_json({**_list_json(revocations), "ended": ended})
        return
    _print_list(revocations)


@click.command()
@click.option(
    "--host-key",
    metavar="KEY|SERIAL",
    required=True,
    help="The host key whose list to export (each host key, one customer's, has its own).",
)
@click.option(
    "-o", "--output", metavar="FILE", help="Write the list's file here (default: stdout)."
)
@click.option("--show", is_flag=True, help="Print the list's entries instead of its file.")
@dir_option
@json_option
def revocations(
    host_key: str, output: str | None, show: bool, directory: str | None, as_json: bool
) -> None:
    """Export the newest revocation list of a host key (signed anew when it is half-way to its
    next update).

    The file (`volact-revocation-list`) is what `volact host install-revocations FILE` takes on
    the hosts certified with that key.
    """
    with opened(directory) as v:
        newest = v.revocation_list(host_key)
    if as_json:
        print_json(_list_json(newest))
    elif show:
        _print_list(newest)
    else:
        write_output(newest.to_file(), output)


@click.command("certificate-lifetime")
@click.argument("lifetime", metavar="DURATION", type=DURATION, required=False)
@dir_option
@json_option
def certificate_lifetime(lifetime: int | None, directory: str | None, as_json: bool) -> None:
    """Show or set how long host certificates issued from now on live (e.g. 90d; default 730d).

    Short-lived certificates are renewed by running hosts before they end (`volact host renew`
    offline), and a host kept away from revocation lists stops at its certificate's end.
    """
    from volact.core.durations import format_duration

    with opened(directory) as v:
        seconds = (
            v.certificate_lifetime() if lifetime is None else v.set_certificate_lifetime(lifetime)
        )
    if as_json:
        print_json({"certificate_lifetime": seconds})
    else:
        click.echo(f"host certificates live {format_duration(seconds)}")


@click.group()
def usage() -> None:
    """Check the signed usage reports hosts export (`volact host usage-report`)."""


@usage.command("verify")
@click.argument("report_file", metavar="FILE")
@click.option("--previous", metavar="FILE", help="The report before it: a gap is reported.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the per-group monthly figures as CSV.")
@dir_option
@json_option
def usage_verify(
    report_file: str, previous: str | None, as_csv: bool, directory: str | None, as_json: bool
) -> None:
    """Verify a usage report (certificates, signed heads, the hash chain, the counts) and print
    the distinct clients per group and month; any failure names its place."""
    from volact.cli.vendor import read_input_file
    from volact.core import usage as usage_core
    from volact.crypto import VerifyKey

    limit = usage_core.MAX_REPORT_BYTES
    report = usage_core.read_report(read_input_file(report_file, limit))
    earlier = None if previous is None else usage_core.read_report(read_input_file(previous, limit))
    with opened(directory) as v:
        keys = [VerifyKey.from_paserk(record.public_key) for record in v.root_keys()]
    if earlier is not None:
        usage_core.verify_report(earlier, keys)
    signers = usage_core.verify_report(report, keys, previous=earlier)
    signed_by = [
        {
            "host_id": signer.host_id,
            "cert_id": signer.cert_id,
            "key_serial": signer.key_serial,
            "customer": signer.customer,
        }
        for signer in signers
    ]
    monthly = report.counted["monthly"]
    if as_json:
        print_json(
            {
                "verified": True,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "first_event_at": report.events[0].at,
                "last_event_at": report.events[-1].at,
                "signed_by": signed_by,
                "monthly": monthly,
            }
        )
    elif as_csv:
        click.echo(usage_core.peaks_csv(report), nl=False)
    else:
        click.echo(
            f"verified: events {report.first_seq}–{report.last_seq}, {len(report.heads)} signed "
            f"head(s) by {len(report.certificates)} host certificate(s)"
        )
        # The stated --from/--to are not signed; the events' times are (chain and heads).
        click.echo(
            f"events from {when(report.events[0].at)} to {when(report.events[-1].at)} "
            f"(stated period {when(report.start)} – {when(report.end)})"
        )
        for signer in signed_by:
            click.echo(
                f"signed by host {signer['host_id']} (certificate {signer['cert_id']}) of host "
                f"key {signer['key_serial']}, customer {signer['customer'] or '-'}"
            )
        rows = [
            [group, month, str(figures["distinct"]), str(figures["peak"])]
            for group, months in sorted(monthly.items())
            for month, figures in sorted(months.items())
        ]
        print_table(["GROUP", "MONTH", "DISTINCT CLIENTS", "PEAK DAY"], rows)


COMMANDS = [revoke, revocations, certificate_lifetime, usage]
