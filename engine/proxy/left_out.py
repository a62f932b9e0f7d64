"""What a request's conversion left out on purpose, told to the client and to the operator.

A client newer than its mapping, or one that offers tools a chat upstream cannot run (Codex offers
``web_search`` on every turn), is served rather than refused: what cannot be forwarded is left out.
That must not be silent. The client sees it in the ``x-mapper-dropped`` response header of every
such answer; the operator sees a warning in the log the first time each thing is left out on each
route (once, not on every request, so that a busy proxy's log stays readable).

The names come from the client's request (a field name, a tool type), so they are cleaned before
they go into a header, and the set of names already warned about is bounded: a client that sends
ever new field names cannot grow it without end.
"""

from __future__ import annotations

import re

from .logs import LOGGER

__all__ = ["LeftOut", "dropped_header"]

MAX_WARNED = 4096  # distinct (route, name) pairs remembered; later ones are no longer warned about
MAX_HEADER = 1024  # bytes of the x-mapper-dropped value
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\[\]\-]")


class LeftOut:
    """The proxy's memory of what it has warned about; one per process."""

    __slots__ = ("_warned",)

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()

    def report(self, route: str, left_out: list[tuple[str, str]]) -> list[str]:
        """Warn (once per route) about each thing left out; return their names for the log line."""
        names = []
        for what, why in left_out:
            name = _clean(what)
            names.append(name)
            key = (route, name)
            if key not in self._warned and len(self._warned) < MAX_WARNED:
                self._warned.add(key)
                LOGGER.warning("left out", extra={"fields": {"route": route, "what": name,
                                                             "why": why}})
        return names


def dropped_header(names: list[str]) -> bytes:
    """The ``x-mapper-dropped`` value: the names, comma-separated, within ``MAX_HEADER`` bytes."""
    value = ",".join(dict.fromkeys(names))
    if len(value) > MAX_HEADER:
        value = value[:MAX_HEADER - 3].rsplit(",", 1)[0] + ",..."
    return value.encode("ascii")


def _clean(name: str) -> str:
    return _UNSAFE.sub("_", name)[:128] or "_"
