"""`volact host dns-records`: the SRV record lines to publish by hand."""

from __future__ import annotations

import click

from volact.cli._output import json_option, print_json
from volact.cli.host import dir_option, resolve_host_dir
from volact.cli.host_config import config_option


@click.command("dns-records")
@config_option
@dir_option
@json_option
@click.option(
    "--domain",
    "--publish-dns",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="Domain to publish under (repeatable, or a comma list; default: this machine's domain).",
)
@click.option(
    "--target",
    "--dns-target",
    default=None,
    metavar="NAME",
    help="The name clients connect to (default: this machine's fully qualified name).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Default: host.json's port."
)
@click.option(
    "--priority",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="SRV priority (lower is tried first).",
)
@click.option(
    "--weight",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="SRV weight (share among hosts of one priority); the same default as publishing.",
)
@click.option(
    "--ttl", type=click.IntRange(0, 2**31 - 1), default=3600, show_default=True, help="TTL (s)."
)
@click.option(
    "--srv-service",
    metavar="NAME",
    default=None,
    help="The SRV service name (default _volact._tcp; a product descriptor may name its own).",
)
def dns_records(
    directory: str | None,
    as_json: bool,
    domains: tuple[str, ...],
    target: str | None,
    port: int | None,
    priority: int,
    weight: int,
    ttl: int,
    srv_service: str | None,
) -> None:
    """Print the DNS SRV records that let clients find this host (zone-file lines).

    Publish them by hand, or let `volact host serve` publish them by dynamic update. With
    --config (serve's file) its port, dns-target, publish-dns, priority, weight and srv-service
    are the defaults, so the records match what serve listens on.
    """
    from volact.host.publishing import manual_records

    made = manual_records(
        domains,
        directory=resolve_host_dir(directory),
        target=target,
        port=port,
        priority=priority,
        weight=weight,
        ttl=ttl,
        srv_service=srv_service,
    )
    for note in made.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        print_json(made.records)
        return
    for line in made.lines:
        click.echo(line)


COMMANDS = [dns_records]
