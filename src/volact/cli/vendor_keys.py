"""`volact vendor key …`, `volact vendor fulfil` and `volact vendor serve`.

They belong to the ``vendor`` group (:mod:`volact.cli.vendor`, whose helpers they use) and are
added to it when it is loaded.
"""

from __future__ import annotations

from typing import Any

import click

from volact import paths
from volact.cli._output import json_option, print_json, print_table
from volact.cli.vendor import (
    database,
    dir_option,
    opened,
    read_input_file,
    when,
    write_output,
)

# --- keys --------------------------------------------------------------------------------------


@click.group()
def key() -> None:
    """Issue keys (each printed alone on stdout) and list them."""


def _print_key(record: Any, as_json: bool) -> None:
    if as_json:
        print_json(record.to_json(reveal=True))
    else:
        click.echo(record.key_text)


@key.command("gvlk")
@click.argument("product_id", metavar="PRODUCT")
@dir_option
@json_option
def key_gvlk(product_id: str, directory: str | None, as_json: bool) -> None:
    """Print PRODUCT's GVLK (public; the same key every time)."""
    with opened(directory) as v:
        _print_key(v.issue_gvlk(product_id), as_json)


@key.command("host")
@click.option("--customer", required=True, help="Who the key is for.")
@click.option(
    "--groups", required=True, metavar="G1,G2", help="Product groups the hosts may serve."
)
@click.option(
    "--hosts",
    type=click.IntRange(1, 1000),
    default=6,
    show_default=True,
    help="Distinct hosts the key certifies.",
)
@dir_option
@json_option
def key_host(customer: str, groups: str, hosts: int, directory: str | None, as_json: bool) -> None:
    """Issue a host key (secret) for a customer's hosts."""
    names = [name.strip() for name in groups.split(",") if name.strip()]
    with opened(directory) as v:
        _print_key(v.issue_host_key(customer=customer, groups=names, host_limit=hosts), as_json)


@key.command("mak")
@click.argument("product_id", metavar="PRODUCT")
@click.option(
    "--count", type=click.IntRange(1, 1_000_000), required=True, help="Machines the MAK activates."
)
@click.option(
    "--validity",
    default="permanent",
    show_default=True,
    help="Ticket validity: 'permanent' or a duration such as 180d.",
)
@click.option("--customer", help="Who the key is for.")
@dir_option
@json_option
def key_mak(
    product_id: str,
    count: int,
    validity: str,
    customer: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Issue a MAK (secret) that activates COUNT machines of PRODUCT."""
    from volact.authority.issuance import parse_mak_validity

    seconds = parse_mak_validity(validity)
    with opened(directory) as v:
        record = v.issue_mak(product_id, count=count, validity=seconds, customer=customer)
        _print_key(record, as_json)


@key.command("list")
@click.option("--reveal", is_flag=True, help="Also print the secret key texts.")
@dir_option
@json_option
def key_list(reveal: bool, directory: str | None, as_json: bool) -> None:
    """List every key issued, with its use (keys are shown by serial unless --reveal)."""
    with opened(directory) as v:
        records = v.issued_keys()
        if as_json:
            print_json([record.to_json(reveal=reveal) for record in records])
            return
        rows = []
        for r in records:
            scope = r.product_id if r.channel != "host" else ",".join(r.groups)
            use = "-" if r.activation_limit is None else f"{r.used}/{r.activation_limit}"
            rows.append(
                [
                    r.key_text if reveal else r.serial,
                    r.channel,
                    scope or "-",
                    r.customer or "-",
                    use,
                    when(r.created_at),
                ]
            )
        print_table(
            ["KEY" if reveal else "SERIAL", "CHANNEL", "FOR", "CUSTOMER", "USED", "ISSUED"], rows
        )


@key.command("show")
@click.argument("key_or_serial", metavar="KEY|SERIAL")
@click.option("--reveal", is_flag=True, help="Also print the secret key text.")
@dir_option
@json_option
def key_show(key_or_serial: str, reveal: bool, directory: str | None, as_json: bool) -> None:
    """Show one key and every activation made with it."""
    with opened(directory) as v:
        record = v.find_key(key_or_serial)
        activations = v.key_activations(record)
        if as_json:
            print_json({**record.to_json(reveal=reveal), "activations": activations})
            return
        from volact.core.durations import format_duration

        validity = "permanent" if record.validity is None else format_duration(record.validity)
        shown = {
            "key": record.key_text if reveal else None,
            "serial": record.serial,
            "channel": record.channel,
            "product": record.product_id,
            "groups": ", ".join(record.groups),
            "customer": record.customer,
            "used": "-"
            if record.activation_limit is None
            else f"{record.used}/{record.activation_limit}",
            "validity": validity if record.channel == "mak" else None,
            "issued": when(record.created_at),
        }
        for name, value in shown.items():
            if value:
                click.echo(f"{name:9} {value}")
        click.echo(f"activations ({len(activations)}):")
        for item in activations:
            if record.channel == "host":
                ended = ""
                if item.get("end_reason"):
                    why = item.get("revocation_reason")
                    because = f" ({why})" if why else ""
                    ended = f", {item['end_reason']}{because} {when(item['ended_at'])}"
                renewal = " renewal" if item.get("kind") == "renewal" else ""
                click.echo(
                    f"  host {item['host_id']} ({item['machine']}) {item['via']}{renewal} "
                    f"{when(item['issued_at'])} cert {item['cert_id']}{ended}"
                )
            else:
                click.echo(
                    f"  {item['cmid']} ({item['machine']}) {item['via']} "
                    f"first {when(item['first_at'])}, last {when(item['last_at'])}, "
                    f"{item['issues']} ticket(s)"
                )


# --- offline fulfilment and the service ----------------------------------------------------------


@click.command()
@click.argument("request_file", metavar="REQUEST_FILE")
@click.option(
    "-o", "--output", metavar="FILE", help="Write the response to FILE instead of stdout."
)
@dir_option
def fulfil(request_file: str, output: str | None, directory: str | None) -> None:
    """Answer an offline request file (host activation, MAK request or MAK batch).

    Prints the response file; a summary goes to stderr. Each request is answered once.
    """
    data = read_input_file(request_file)
    with opened(directory) as v:
        result = v.fulfil(data)
    write_output(result.response, output, private=True)
    if result.kind == "host":
        click.echo("host certified; give the response file to the host admin", err=True)
    else:
        click.echo(f"{result.issued} machine(s) activated, {result.refused} refused", err=True)
        for note in result.notes:
            click.echo(f"  refused: {note}", err=True)


@click.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=7689, show_default=True, help="TCP port."
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Requests per second per client address (0: no limit).",
)
@click.option(
    "--burst",
    type=click.FloatRange(min=1),
    default=20.0,
    show_default=True,
    help="Burst size per client address.",
)
@dir_option
def serve(port: int, bind: str, rate: float, burst: float, directory: str | None) -> None:
    """Run the online vendor service (host certification and MAK activation).

    Logs are JSON lines on stderr; SIGTERM stops it cleanly.
    """
    from volact.authority.operations import Vendor
    from volact.authority.service import serve as run
    from volact.web import RateLimiter, runner

    runner.configure_logging()
    with Vendor.open(paths.resolve_dir("vendor", directory), db=database()) as v:
        run(v, bind=bind, port=port, rate_limiter=RateLimiter(rate, burst))


COMMANDS = [key, fulfil, serve]
