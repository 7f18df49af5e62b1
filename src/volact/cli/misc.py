"""Top-level commands that belong to no area: ``explain`` and ``demo``."""

from __future__ import annotations

import json
from pathlib import Path

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


@click.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's files in this new directory instead of a temporary one.",
)
@click.option(
    "--pause",
    type=click.FloatRange(0, 5),
    default=0.3,
    show_default=True,
    help="Seconds to pause between client steps (0 for no pauses).",
)
def demo(keep: Path | None, pause: float) -> None:
    """Play the whole story in a temporary folder: a vendor, a host certified offline, a real
    host process, and five clients reaching the threshold one by one (SQLite)."""
    from volact.demo import run_demo

    run_demo(keep=keep, pause=pause)


COMMANDS: list[click.Command] = [explain, demo]
