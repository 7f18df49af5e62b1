"""Rendering that every ``volact`` command group shares: ``--json``, JSON and tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """``--json``: print JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns as wide as their widest cell, two spaces apart, the headers first."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
