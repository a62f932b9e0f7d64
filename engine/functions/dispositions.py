"""Functions that say what a conversion did with a value it does not forward.

A mapping that cannot carry a value says so: ``drop:`` with a reason for what is never forwarded
whatever the request holds, ``reject:`` for a 400. ``leave_out`` is the third way, for a value a
client sends that the upstream cannot use but that should not fail the request (a built-in tool
offered to a chat model): the value goes nowhere, and the conversion records what and why
(``Context.leave_out``), so the proxy can log it and name it in ``x-mapper-dropped``.
"""

from __future__ import annotations

from ..context import Context
from ..types import Json
from .registry import Example, register


@register("leave_out", examples=[
    Example(given={"type": "web_search"}, args={"what": "tools[web_search]",
                                                  "reason": "a chat upstream cannot run it"},
            expect=None),
])
def leave_out(value: Json, ctx: Context, what: Json = None, reason: Json = None) -> Json:
    """No value, and a note on the context of what was left out and why (for logs and headers)."""
    ctx.leave_out(str(what), str(reason))
    return None
