"""The registry of named functions: the mapping language's escape hatch.

A function is reached with ``fn: name`` when the logic needs loops, look-behind, grouping or
recursion that JMESPath cannot say. Every function is pure: ``(value, ctx, **args) -> value``; the
clock, the id factory and the original request arrive through ``ctx``, never through I/O.

Each one is registered with a one-line summary (``mapper functions`` lists them) and at least one
``Example``; ``tests/test_functions.py`` runs every example, so the documentation cannot drift from
the code. Names are resolved when a mapping compiles: a typo fails ``mapper lint``, not a request.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from ..types import Json


@dataclass(frozen=True, slots=True)
class Example:
    """``given`` (and ``args``) produce ``expect``, or raise ``raises`` (an error class name)."""

    given: Json
    expect: Json = None
    args: dict[str, Json] = field(default_factory=dict)
    raises: str | None = None
    context: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    call: Callable[..., Json]
    summary: str
    topic: str
    parameters: tuple[str, ...]
    examples: tuple[Example, ...]


REGISTRY: dict[str, Function] = {}


def register(name: str, *, examples: list[Example]) -> Callable[[Callable[..., Json]], Callable[..., Json]]:
    """Register ``(value, ctx, **args) -> value`` under ``name``. The docstring's first line is
    the summary shown by ``mapper functions``."""

    def decorate(call: Callable[..., Json]) -> Callable[..., Json]:
        if name in REGISTRY:
            raise ValueError(f"function '{name}' is registered twice")
        if not examples:
            raise ValueError(f"function '{name}' needs at least one example")
        doc = inspect.getdoc(call) or ""
        summary = doc.splitlines()[0] if doc else ""
        if not summary:
            raise ValueError(f"function '{name}' needs a docstring")
        signature = inspect.signature(call)
        parameters = tuple(list(signature.parameters)[2:])  # after (value, ctx)
        topic = call.__module__.rsplit(".", 1)[-1]
        REGISTRY[name] = Function(name, call, summary, topic, parameters, tuple(examples))
        return call

    return decorate


def describe() -> list[dict[str, Any]]:
    """The registry as data, sorted by topic then name, for ``mapper functions``."""
    return [
        {"name": f.name, "topic": f.topic, "summary": f.summary, "args": list(f.parameters)}
        for f in sorted(REGISTRY.values(), key=lambda f: (f.topic, f.name))
    ]
