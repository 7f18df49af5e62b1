"""Registers every command group on the top-level ``volact`` group.

Each area keeps its commands in its own module (``vendor.py``, ``host.py``, ``client.py``,
``misc.py``) so that they can grow independently.
"""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    from volact.cli import client, host, misc, vendor

    cli.add_command(vendor.vendor)
    cli.add_command(host.host)
    cli.add_command(client.client)
    for command in misc.COMMANDS:
        cli.add_command(command)
