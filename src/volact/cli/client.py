"""`volact client …` commands."""

from __future__ import annotations

import click


@click.group()
def client() -> None:
    """The client's commands."""
