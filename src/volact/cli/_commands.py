"""Registers every command group on the top-level ``volact`` group.

Each area keeps its commands in its own module (``vendor.py``, ``host.py``, ``client.py``,
``misc.py``) so that they can grow independently.
"""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    from volact.cli import client, host, host_certify, misc, vendor

    cli.add_command(vendor.vendor)
    cli.add_command(host.host)
    # `host init` and `host activate` belong to host certification (the vendor side's flow).
    for command in host_certify.COMMANDS:
        host.host.add_command(command)
    cli.add_command(client.client)
    for command in misc.COMMANDS:
        cli.add_command(command)
