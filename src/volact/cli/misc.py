"""Top-level commands that belong to no area: ``explain`` and ``demo``."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click

from volact.core.errors import CODES, NotFound


def _known_words() -> list[str]:
    from volact.core.glossary import GLOSSARY

    return sorted({*CODES, *(term for term, _ in GLOSSARY)})


def _entry(word: str) -> dict[str, Any]:
    """Everything ``word`` means: its error code (if it is one) and its other meanings."""
    from volact.core.errors import remedy_for
    from volact.core.glossary import terms_of

    info = CODES.get(word)
    entry: dict[str, Any] = (
        {"word": word} if info is None else {**vars(info), "sdk_remedy": remedy_for(word, "sdk")}
    )
    entry["meanings"] = [vars(term) for term in terms_of(word)]
    return entry


@click.command()
@click.argument("code", required=False, metavar="WORD")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(code: str | None, as_json: bool) -> None:
    """Explain an error code, or any word the output prints: a client state or reason
    (oob_grace_expired), a request outcome (below_threshold), an event kind (cloned_image), a
    DNS publishing reason (badkey). Without WORD, list the error codes."""
    if code is None:
        if as_json:
            click.echo(json.dumps([vars(info) for info in CODES.values()], indent=2))
            return
        width = max(len(c) for c in CODES)
        for info in CODES.values():
            click.echo(f"{info.code.ljust(width)}  {info.summary}")
        click.echo("\n`volact explain WORD` also explains the states, reasons, outcomes and event")
        click.echo("kinds that the status and event commands print.")
        return
    word = code.strip().lower().replace("-", "_")
    known = _known_words()
    if word not in known:
        close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise NotFound(
            f"no error code or other word {code!r} is known; {hint}`volact explain` lists "
            "the error codes",
            {"code": code, "suggestions": close},
        )
    entry = _entry(word)
    if as_json:
        click.echo(json.dumps(entry, indent=2))
        return
    paragraphs = []
    if "code" in entry:
        error = entry
        paragraphs += [
            f"{word} (error code, from {error['where']}): {error['summary']}",
            f"What it means: {error['explanation']}",
            f"What to do: {error['remedy']}",
        ]
        if error["sdk_remedy"] != error["remedy"]:
            paragraphs.append(f"From the SDK: {error['sdk_remedy']}")
    for term in entry["meanings"]:
        paragraphs.append(f"{word} ({term['kind']}): {term['short']}")
        paragraphs.append(f"What it means: {term['explanation']}")
        if term["remedy"]:
            paragraphs.append(f"What to do: {term['remedy']}")
    click.echo("\n\n".join(paragraphs))


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
