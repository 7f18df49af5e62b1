"""Top-level commands that belong to no area: ``explain`` and ``demo``."""

from __future__ import annotations

import json

import click

from volact.core.errors import CODES, NotFound


@click.command()
@click.argument("code", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(code: str | None, as_json: bool) -> None:
    """Explain an error CODE (or list every code)."""
    if code is None:
        if as_json:
            click.echo(json.dumps([vars(info) for info in CODES.values()], indent=2))
            return
        width = max(len(c) for c in CODES)
        for info in CODES.values():
            click.echo(f"{info.code.ljust(width)}  {info.summary}")
        return
    found = CODES.get(code.strip().lower())
    if found is None:
        raise NotFound(f"no error code {code!r}; `volact explain` lists them all", {"code": code})
    if as_json:
        click.echo(json.dumps(vars(found), indent=2))
        return
    info = found
    click.echo(f"{info.code} ({info.where}): {info.summary}\n")
    click.echo(f"What it means: {info.explanation}\n")
    click.echo(f"What to do: {info.remedy}")


COMMANDS: list[click.Command] = [explain]
