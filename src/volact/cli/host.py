"""`volact host …` commands."""

from __future__ import annotations

import click


@click.group()
def host() -> None:
    """The host's commands."""
