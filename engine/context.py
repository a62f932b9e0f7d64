"""The run-time context handed to every compiled rule and function.

Rules are pure: anything that is not the payload itself arrives here. The clock and the id factory are
injected so that tests (and ``mapper convert --deterministic``) produce the same output every run.
A conversion also reports here what it left out on purpose (``left_out``).
``$name`` paths in a mapping read these fields: ``$request`` is the client's original request (a
Response echoes its parameters), ``$root`` the whole document being converted, ``$status`` the HTTP
status of an upstream error, ``$options`` the mapping's options, ``$tables`` its tables (each a
read-only map of rows, for functions that take a whole table, e.g. ``rename_param``) and ``$state``
a stream's state.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from .types import Json

# The names a mapping may use after ``$``; checked at compile time.
CONTEXT_VARIABLES = ("request", "root", "status", "options", "tables", "state")


def _joined(prefix: str, suffix: str) -> str:
    # ``resp`` gives ``resp_<suffix>``; a prefix that brings its own separator (``chatcmpl-``,
    # as OpenAI's chat ids have) is used as it is
    return prefix + suffix if prefix[-1:] in ("-", "_") else f"{prefix}_{suffix}"


class RandomIds:
    """OpenAI-looking ids: ``resp_`` + 48 hex digits. Random, so safe to hand to clients."""

    __slots__ = ()

    def __call__(self, prefix: str) -> str:
        return _joined(prefix, os.urandom(24).hex())


class SequentialIds:
    """Deterministic ids for tests and reproducible scripts: ``resp_0001``, ``msg_0002``, ..."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return _joined(prefix, f"{self.count:04d}")


def fixed_clock(seconds: float = 1_700_000_000) -> Callable[[], float]:
    """A clock that always says the same time."""
    return lambda: seconds


_RANDOM_IDS = RandomIds()


@dataclass(slots=True)
class Context:
    """Everything a rule may read besides its scope. One per conversion; cheap to build."""

    clock: Callable[[], float] = time.time
    new_id: Callable[[str], str] = _RANDOM_IDS
    request: Json = None
    root: Json = None
    status: int | None = None
    options: Mapping[str, Json] | None = None  # set by the Mapping that runs the conversion
    tables: Mapping[str, Mapping[str, Json]] | None = None  # likewise
    state: Json = None
    # what the conversion left out on purpose, as (what, why) pairs: a tool the upstream cannot
    # run, a field newer than the mapping. Not an error; the proxy logs it and names it in the
    # x-mapper-dropped header, so nothing is lost without a word.
    left_out: list[tuple[str, str]] | None = None

    def now(self) -> int:
        """Unix time in whole seconds, as the APIs report ``created``/``created_at``."""
        return int(self.clock())

    def leave_out(self, what: str, why: str) -> None:
        """Record that ``what`` (``tools[web_search]``, ``client_metadata``) was left out, and why."""
        if self.left_out is None:
            self.left_out = []
        self.left_out.append((what, why))


def deterministic_context(**overrides: Json) -> Context:
    """A context with sequential ids and a fixed clock, for tests and ``--deterministic``."""
    return Context(clock=fixed_clock(), new_id=SequentialIds(), **overrides)
