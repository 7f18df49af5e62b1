"""The client lifecycle diagram, generated from the client machine's transition table.

``docs/lifecycle.md`` holds the output of :func:`mermaid_diagram` (a test keeps it current).
"""

from __future__ import annotations

from volact.core.client_machine import CLOCK_TAMPERED, ENDS_TAMPERING, TRANSITIONS
from volact.core.states import State

__all__ = ["mermaid_diagram"]


def mermaid_diagram() -> str:
    """The transition table as a Mermaid ``stateDiagram-v2`` (for ``docs/lifecycle.md``).

    Rows with the same source and target share one arrow (in the order of :class:`State`); a
    reason is shown in parentheses.
    """
    edges: dict[tuple[State, State], list[str]] = {}
    for row in TRANSITIONS:
        label = row.event.value if row.reason is None else f"{row.event.value} ({row.reason})"
        edges.setdefault((row.source, row.target), []).append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {State.UNLICENSED.value}"]
    order = list(State)
    for (source, target), labels in sorted(
        edges.items(), key=lambda item: (order.index(item[0][0]), order.index(item[0][1]))
    ):
        lines.append(f"    {source.value} --> {target.value} : {', '.join(labels)}")
    ends = ", ".join(sorted(event.value for event in ENDS_TAMPERING))
    lines += [
        f"    note right of {State.NOTIFICATION.value}",
        f"        {CLOCK_TAMPERED} is sticky: only {ends} leaves it",
        "    end note",
    ]
    return "\n".join(lines) + "\n"
