"""`volact host init` and `volact host activate`: certifying a host with the vendor."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
