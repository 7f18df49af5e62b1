"""docs/lifecycle.md shows the diagram generated from the client machine's transition table.

When the table changes, regenerate the block (and read the diff before committing it):

    VOLACT_REGENERATE_DOCS=1 .venv/bin/pytest tests/core/test_lifecycle_doc.py
"""

from __future__ import annotations

import os
from pathlib import Path

from volact.core.lifecycle import mermaid_diagram
from volact.core.states import State

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"
BEGIN = "<!-- lifecycle:begin -->"
END = "<!-- lifecycle:end -->"
REGENERATE = "VOLACT_REGENERATE_DOCS"


def _block() -> str:
    return f"{BEGIN}\n```mermaid\n{mermaid_diagram()}```\n{END}"


def _split(text: str) -> tuple[str, str, str]:
    start = text.index(BEGIN)
    stop = text.index(END, start) + len(END)
    return text[:start], text[start:stop], text[stop:]


def test_the_lifecycle_diagram_is_generated_from_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1, f"{DOC} needs exactly one {BEGIN} marker"
    assert text.count(END) == 1, f"{DOC} needs exactly one {END} marker"
    before, block, after = _split(text)
    expected = _block()
    if block != expected and os.environ.get(REGENERATE) == "1":
        DOC.write_text(before + expected + after, encoding="utf-8")
        block = expected
    assert block == expected, (
        f"{DOC.name} is out of date with client_machine.TRANSITIONS; regenerate it with "
        f"`{REGENERATE}=1 .venv/bin/pytest tests/core/test_lifecycle_doc.py`"
    )


def test_the_doc_explains_every_state_and_reason() -> None:
    text = DOC.read_text(encoding="utf-8")
    for state in State:
        assert f"`{state.value}`" in text
    for reason in ("oob_grace_expired", "oot_grace_expired", "clock_tampered"):
        assert f"`{reason}`" in text
