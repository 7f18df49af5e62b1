"""volact.core is pure: no clock reads, no I/O, no threads, no randomness of its own.

ruff enforces the same through src/volact/core/ruff.toml; this test checks independently (and
also catches builtins such as open() and print(), which ruff's banned-api cannot see).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "src" / "volact" / "core"

BANNED_MODULES = {
    "time",
    "asyncio",
    "threading",
    "sqlite3",
    "socket",
    "ssl",
    "subprocess",
    "os",
    "pathlib",
    "shutil",
    "random",
    "secrets",
    "httpx",
    "starlette",
    "uvicorn",
    "dns",
    "psycopg",
    "psycopg_pool",
    "multiprocessing",
    "concurrent",
    "urllib",
    "http",
    "io",
    "logging",
}
BANNED_CALLS = {"open", "print", "input", "exec", "eval", "breakpoint"}
BANNED_ATTRIBUTES = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("uuid", "uuid4"),
    ("uuid", "uuid1"),
}


def core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert files, "no core files found"
    return files


def violations(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in BANNED_MODULES:
                found.append(f"from {node.module} import …")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in BANNED_CALLS:
                found.append(f"{node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in BANNED_ATTRIBUTES:
                found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import time\n",
        "from datetime import datetime\nx = datetime.now()\n",
        "import os.path\n",
        "from random import random\n",
        "open('x')\n",
        "import uuid\nuuid.uuid4()\n",
        "import asyncio\n",
    ],
)
def test_the_check_catches_impurity(source: str) -> None:
    assert violations(source), source
