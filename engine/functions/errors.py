"""Functions over upstream error bodies on their way back to the client."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..context import Context
from ..types import Json
from .registry import Example, register

# where a param path can be cut: before a '.' or a '[', and at its end
_BOUNDARY = re.compile(r"(?=[.\[])")


@register("rename_param", examples=[
    Example(given="input[3].content[0].text", args={"names": {"input": "messages"}},
            expect="messages"),
    Example(given="text.format.schema", args={"names": {"text.format": "response_format",
                                                        "text": "text"}},
            expect="response_format"),
    Example(given="temperature", args={"names": {"input": "messages"}}, expect="temperature"),
    Example(given="inputs", args={"names": {"input": "messages"}}, expect="inputs"),
    Example(given=None, args={"names": {"input": "messages"}}, expect=None),
])
def rename_param(param: Json, ctx: Context, names: Json) -> Json:
    """Name an upstream error's ``param`` in the client's request fields instead of the upstream's.

    ``names`` maps a path prefix of the upstream's request (``input``, ``text.format``) to the
    client's field it came from: a mapping passes its ``error_param`` table (``$tables.error_param``),
    which an overlay extends by a row for each field it renames. The longest prefix that ends at a
    segment wins, and what follows it is dropped: below a renamed field the two requests are shaped
    differently (one chat message may become several input items), so an index there would point
    at the wrong element. A param no prefix matches has the same name on both sides and is kept.
    """
    if param.__class__ is not str or not isinstance(names, Mapping):
        return param
    cuts = [match.start() for match in _BOUNDARY.finditer(param)] + [len(param)]
    for cut in reversed(cuts):
        renamed = names.get(param[:cut])
        if renamed is not None:
            return renamed
    return param
