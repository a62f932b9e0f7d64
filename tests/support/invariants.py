"""Whole-stream invariants: why the suite checks whole streams, and how a broken rule is reported.

A per-event schema cannot see ordering, identity or accumulation: a stream whose every event is valid
can still send a delta for an item that was never added, change an item's id between ``added`` and
``done``, or finish with text that is not the sum of its deltas. Those are the bugs peers ship
(PEERS.md §C), so every stream test runs these checks on every stream it produces.

The rules live with their stream: ``responses_invariants.check_responses_stream`` (R1..R11) and
``chat_invariants.check_chat_stream`` (C1..C7), each listing its rules in its docstring;
``sse_reader.parse_sse_events`` decodes the body they judge. This module holds what they share.

How the checkers work:

- They walk the decoded events once, keeping a small model of what is open (items, content
  parts, tool calls) and what each delta added up to. Handlers are looked up by event ``type``.
- They do not stop at the first problem. Every broken rule becomes a ``Finding`` naming the event
  index, its type and the rule, and all findings are raised together as one ``StreamInvariantError``
  (an ``AssertionError``), so a test failure shows the root cause next to its knock-on effects.
- Rule tags are stable and match the numbered lists; tests and reviewers refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: where (event index and type), which rule, and what is wrong."""

    rule: str
    index: int | None
    event_type: str | None
    message: str

    def __str__(self) -> str:
        where = "end of stream" if self.index is None else f"#{self.index} {self.event_type}"
        return f"{where} [{self.rule}]: {self.message}"


class StreamInvariantError(AssertionError):
    """A stream broke one or more invariants; ``findings`` lists every one, in stream order."""

    def __init__(self, kind: str, findings: list[Finding]) -> None:
        self.findings = findings
        lines = [f"{kind} stream breaks {len(findings)} invariant(s):", *(f"  {f}" for f in findings)]
        super().__init__("\n".join(lines))

    @property
    def rules(self) -> set[str]:
        """The rule tags that fired, e.g. ``{"R4", "R8"}``."""
        return {f.rule for f in self.findings}


def as_text(value: Json) -> str:
    """``value`` if it is a string, else "" (a wrong type is already a schema finding)."""
    return value if isinstance(value, str) else ""


def as_index(value: Json) -> int | None:
    """``value`` if it can be an index (an int, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
