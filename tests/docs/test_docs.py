"""Docs stay true to the code: every command, setting and error code is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from volact.cli import cli
from volact.core.errors import CODES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def commands(
    group: click.Group, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
    return found


ALL_COMMANDS = commands(cli, ("volact",))
LEAF_COMMANDS = [(p, c) for p, c in ALL_COMMANDS if not isinstance(c, click.Group)]


def narrative() -> str:
    """Everything a person reads, except the generated reference."""
    texts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    texts += [
        p.read_text(encoding="utf-8")
        for p in sorted(DOCS.glob("*.md"))
        if p.name not in {"cli.md", "errors.md"}
    ]
    return "\n".join(texts)


def test_generated_docs_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "command"), ALL_COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize("path", [p for p, _ in LEAF_COMMANDS], ids=" ".join)
def test_every_command_is_explained_in_the_guides(path: tuple[str, ...]) -> None:
    assert " ".join(path) in narrative(), f"`{' '.join(path)}` is in no guide (README.md or docs/)"


def test_every_setting_is_documented() -> None:
    names: set[str] = set()
    for source in (ROOT / "src").rglob("*.py"):
        names |= set(re.findall(r"\bVOLACT_[A-Z_]+\b", source.read_text(encoding="utf-8")))
    assert names, "no VOLACT_ settings found"
    text = narrative()
    missing = sorted(name for name in names if name not in text)
    assert missing == [], f"settings in no guide: {missing}"


def test_every_error_code_is_documented() -> None:
    errors = (DOCS / "errors.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"## {code}\n" in errors


def test_docs_links_resolve() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(
            r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")
        ):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_module_is_in_the_architecture_tree() -> None:
    """docs/architecture.md lists every module of src/volact under its package, and no other."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    tree = text.split("```\nsrc/volact/\n", 1)[1].split("```", 1)[0]
    listed: set[str] = set()
    packages: list[str] = []  # the enclosing packages, one per level of indentation (2 spaces)
    for line in tree.splitlines():
        name = line.strip().split(" ", 1)[0]
        if not name:
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        del packages[depth:]
        if name.endswith("/"):
            packages.append(name)
        elif name.endswith(".py"):
            listed.add("".join(packages) + name)
    source = ROOT / "src" / "volact"
    actual = {str(path.relative_to(source)) for path in source.rglob("*.py")}
    assert sorted(actual - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - actual) == [], "docs/architecture.md names modules that do not exist"
