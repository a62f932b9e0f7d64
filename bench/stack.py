"""A stack: one canned upstream, the reference pass-through and ``mapper serve`` (per direction).

The proxy benchmark, the paced-stream benchmark and the memory test each need the same three kinds
of server, differing only in how fast the upstream streams. ``start_stack`` starts them all at once
(start-up overlaps), pins them (``procs.plan_cores``), waits until each listens, and records why a
mapper process is missing instead of failing: the upstream and the reference are required, mapper
is optional until it exists.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .procs import CoreLayout, Proc, ProcessSet, StartError, free_port
from .targets import DIRECTIONS, Direction, mapper_argv, mapper_status

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    """The running servers of one stack, and why any mapper process is absent."""

    label: str
    upstream: Proc
    reference: Proc
    mappers: dict[str, Proc] = field(default_factory=dict)  # direction key -> process
    missing: dict[str, str] = field(default_factory=dict)  # direction key -> reason

    def proxy(self, target: str, direction: Direction) -> Proc | None:
        """The process whose CPU and memory count for ``target`` (None for direct)."""
        if target == "reference":
            return self.reference
        if target == "mapper":
            return self.mappers.get(direction.key)
        return None

    def origin(self, target: str, direction: Direction) -> str:
        proc = {"direct": self.upstream, "reference": self.reference}.get(target) \
            or self.mappers[direction.key]
        return f"http://127.0.0.1:{proc.port}"


def _python_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else "")}


def start_stack(procs: ProcessSet, layout: CoreLayout, label: str, chunk_delay_ms: float,
                ready_timeout: float, mapper_extra: tuple[str, ...] = (),
                directions: tuple[Direction, ...] = DIRECTIONS,
                upstream_extra: tuple[str, ...] = (),
                mapper_cpus: frozenset[int] | None = None) -> Stack:
    """Start and wait for a stack. Raises ``StartError`` if the upstream or reference fails."""
    env = _python_env()
    up_port = free_port()
    upstream = procs.start(f"{label}-upstream",
                           [sys.executable, "-m", "bench.upstream", "--port", str(up_port),
                            "--chunk-delay-ms", str(chunk_delay_ms), *upstream_extra],
                           up_port, layout.upstream, env=env, cwd=str(REPO_ROOT))
    ref_port = free_port()
    reference = procs.start(f"{label}-reference",
                            [sys.executable, "-m", "bench.passthrough", "--port", str(ref_port),
                             "--upstream", f"http://127.0.0.1:{up_port}"],
                            ref_port, layout.proxy, env=env, cwd=str(REPO_ROOT))
    stack = Stack(label, upstream, reference)
    for direction in directions:
        why = mapper_status(direction)
        if why:
            stack.missing[direction.key] = why
            continue
        port = free_port()
        stack.mappers[direction.key] = procs.start(
            f"{label}-mapper-{direction.key}", mapper_argv(direction, up_port, port, mapper_extra),
            port, layout.proxy if mapper_cpus is None else mapper_cpus, env=env, cwd=str(REPO_ROOT))
    procs.wait_ready(upstream, ready_timeout)
    procs.wait_ready(reference, ready_timeout)
    for key, proc in list(stack.mappers.items()):
        try:
            procs.wait_ready(proc, ready_timeout)
        except StartError as error:
            stack.missing[key] = f"`mapper serve` did not start: {error}"
            del stack.mappers[key]
            procs.stop(proc)
    return stack


def stop_stack(procs: ProcessSet, stack: Stack) -> None:
    procs.stop_many([*stack.mappers.values(), stack.reference, stack.upstream])
