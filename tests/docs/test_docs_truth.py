"""The docs say what the code does, beyond command names: which of a flag and an environment
variable wins, which packages the setup script installs, which event kinds the host records, and
that `--help` lists each subcommand once."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from volact import paths
from volact.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "volact"


def pages() -> dict[str, str]:
    """Every page a person reads (the generated reference included: it is read too)."""
    found = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    for page in sorted(DOCS.glob("*.md")):
        found[f"docs/{page.name}"] = page.read_text(encoding="utf-8")
    return found


def sentences(text: str) -> list[str]:
    """The text's sentences, each on one line (paragraphs joined; list items and table rows kept
    apart)."""
    joined = re.sub(r"\n(?![\n|#`-]|\s*[-*] |\d+\. )", " ", text)
    return [s for line in joined.splitlines() for s in re.split(r"(?<=[.;])\s+(?=[A-Z`])", line)]


# --- which wins: --dir or the environment ---------------------------------------------------------

_DIR_TOKEN = re.compile(r"--dir\b|\bVOLACT_(?:VENDOR|HOST|STATE)_DIR\b")


def precedence_errors(text: str, winner: str) -> list[str]:
    """The sentences of ``text`` that give the order of ``--dir`` and a ``VOLACT_*_DIR`` variable
    ("A, else B") with ``winner`` ("flag" or "environment") second."""
    wrong = []
    for sentence in sentences(text):
        if "else" not in sentence:
            continue
        tokens = _DIR_TOKEN.findall(sentence)
        if "--dir" not in tokens or len(set(tokens)) < 2:
            continue
        first = "flag" if tokens[0] == "--dir" else "environment"
        if first != winner:
            wrong.append(sentence.strip())
    return wrong


def code_winner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Which wins in the code, asked of the code: both set, see which directory is used."""
    winners = set()
    for area, variable in paths.ENV_VARS.items():
        monkeypatch.setenv(variable, str(tmp_path / "from-environment"))
        chosen = paths.resolve_dir(area, tmp_path / "from-flag")
        winners.add("flag" if chosen == tmp_path / "from-flag" else "environment")
    assert len(winners) == 1, "the areas disagree on precedence"
    return winners.pop()


def test_documented_directory_precedence_is_the_codes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    winner = code_winner(monkeypatch, tmp_path)
    wrong = {name: precedence_errors(text, winner) for name, text in pages().items()}
    assert {name: lines for name, lines in wrong.items() if lines} == {}


def test_the_precedence_check_catches_the_old_admin_guide_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """docs/admin.md §2 said the variable wins; the flag does. The check must see it."""
    old = (
        "This makes the host directory: `VOLACT_HOST_DIR`, else `--dir DIR`, else "
        "`/var/lib/volact/host`\nwhen writable, else your user's data directory."
    )
    assert precedence_errors(old, code_winner(monkeypatch, tmp_path)) != []


# --- what scripts/setup installs ------------------------------------------------------------------


def setup_claims(text: str) -> list[tuple[str, list[str]]]:
    """Each sentence that says what ``scripts/setup`` (or ``scripts/check``, which runs it)
    installs or sets up, with the names it lists in parentheses."""
    claims = []
    for sentence in sentences(text):
        if not re.search(r"scripts/(setup|check)", sentence):
            continue
        if not re.search(r"install|sets everything up", sentence):
            continue
        names: list[str] = []
        for group in re.findall(r"\(([^()]*)\)", sentence):
            for item in re.split(r",|;|\band\b|\bwith\b", group):
                item = item.strip().strip("`").strip()
                if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", item) and item not in {"as", "root"}:
                    names.append(item)
        claims.append((sentence.strip(), names))
    return claims


def test_the_packages_the_docs_name_are_the_ones_scripts_setup_installs() -> None:
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    claims = [claim for text in pages().values() for claim in setup_claims(text)]
    assert claims, "no sentence says what scripts/setup installs"
    missing = []
    for sentence, names in claims:
        for name in names:
            # A Debian package name must be in the script as a word; a product (BIND,
            # PostgreSQL) at least by name.
            exact = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", setup)
            if not (exact or (name[0].isupper() and name.lower() in setup.lower())):
                missing.append(f"{name!r} in: {sentence}")
    assert missing == []


def test_the_package_check_catches_the_old_claims() -> None:
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    old_dns = "`scripts/setup` installs BIND (`bind9`, `bind9-utils`, `dnsutils`)."
    old_admin = (
        "`scripts/setup` also installs what the test suite needs (BIND, faketime, PostgreSQL, "
        "Chromium; as root)."
    )
    assert ("dnsutils" in setup_claims(old_dns)[0][1]) and not re.search(
        r"(?<![\w-])dnsutils(?![\w-])", setup
    )
    assert "Chromium" in setup_claims(old_admin)[0][1]


# --- the event kinds ------------------------------------------------------------------------------


def event_kinds_in_code() -> set[str]:
    """Every kind of event the code records: ``Event("kind", …)`` and the block/unblock kinds."""
    kinds: set[str] = set()
    for source in SRC.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        kinds |= set(re.findall(r"\bEvent\(\s*\"([a-z_]+)\"", text))
        for pair in re.findall(r"kind = \"([a-z_]+)\" if \w+ else \"([a-z_]+)\"", text):
            kinds |= set(pair)
    return kinds


def event_kinds_in_host_guide() -> set[str]:
    text = (DOCS / "host.md").read_text(encoding="utf-8")
    table = text.split("The event log, newest first. Event kinds:", 1)[1].split("\n\n", 2)[1]
    kinds: set[str] = set()
    for row in table.splitlines()[2:]:
        kinds |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return kinds


def test_the_host_guides_event_table_has_every_kind_the_code_records() -> None:
    in_code = event_kinds_in_code()
    assert {"activation_request", "cloned_image", "certificate_loaded"} <= in_code
    assert event_kinds_in_host_guide() == in_code


# --- --help ---------------------------------------------------------------------------------------


def groups(group: click.Group, path: list[str]) -> list[tuple[list[str], click.Group]]:
    found = [(path, group)]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += groups(command, [*path, name])
    return found


@pytest.mark.parametrize(
    ("path", "group"),
    groups(cli, []),
    ids=lambda v: (" ".join(v) or "volact") if isinstance(v, list) else "",
)
def test_help_lists_each_subcommand_once(path: list[str], group: click.Group) -> None:
    out = CliRunner().invoke(cli, [*path, "--help"]).output
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        starts = [line for line in out.splitlines() if line.split()[:1] == [name]]
        assert len(starts) == 1, f"`volact {' '.join(path)} --help` lists {name} {len(starts)}x"


# --- blocking is not revocation -------------------------------------------------------------------


def test_where_host_block_is_documented_it_says_blocking_is_not_revocation() -> None:
    """A blocked client stays licensed until its ticket ends: every guide that explains `host
    block` says so, and so do the command's help and output (tests/host/test_messages.py)."""
    for name in ("docs/host.md", "docs/admin.md"):
        text = pages()[name]
        assert "volact host block" in text
        assert "**Blocking is not revocation**" in text or "**Blocking is not revocation.**" in text
    help_text = CliRunner().invoke(cli, ["host", "block", "--help"]).output
    assert "Blocking is not revocation" in " ".join(help_text.split())
