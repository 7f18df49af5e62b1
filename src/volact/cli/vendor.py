"""`volact vendor …` commands."""

from __future__ import annotations

import click


@click.group()
def vendor() -> None:
    """The vendor's commands."""
