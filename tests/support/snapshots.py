"""JSON snapshots laid out for review: one item per line.

syrupy's JSON extension indents every level, so a 40-event stream becomes 600 lines and a diff of
one changed field is lost among them. These extensions write the same JSON (it still parses; keys
sorted) with only the outer levels expanded: a stream is one event per line, a converted body one
line per field and per list item (a message, an output item, a tool) of a field too long for one
line. A changed event or message is then one changed line in review.
"""

from __future__ import annotations

import json
from typing import Any

from syrupy.extensions.json import JSONSnapshotExtension


WIDTH = 100
"""A nested object or list whose line fits in this many characters stays on one line."""


def layout(value: Any, expand: int, indent: str = "") -> str:
    """``value`` as JSON with the outer ``expand`` levels one item per line, the rest inline.

    Below the outermost level, a container short enough to read at a glance (its whole line within
    ``WIDTH``) stays inline: ``"metadata": {"k": "v"}`` is one field, one line.
    """
    if expand <= 0 or not isinstance(value, (dict, list)) or not value:
        return _inline(value)
    inner = indent + "  "
    if isinstance(value, dict):
        items = [_item(f"{inner}{json.dumps(key, ensure_ascii=False)}: ", value[key], expand - 1, inner)
                 for key in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    items = [_item(inner, item, expand - 1, inner) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + indent + "]"


def _item(head: str, value: Any, expand: int, indent: str) -> str:
    flat = head + _inline(value)
    return flat if len(flat) <= WIDTH else head + layout(value, expand, indent)


def _inline(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


class _Laid(JSONSnapshotExtension):
    expand = 1

    def serialize(self, data: Any, **kwargs: Any) -> str:
        filtered = self._filter(data=data, depth=0, path=(), exclude=kwargs.get("exclude"),
                                include=kwargs.get("include"), matcher=kwargs.get("matcher"))
        return layout(filtered, self.expand) + "\n"


class EventLines(_Laid):
    """A list of stream events: one event per line."""

    expand = 1


class BodyLines(_Laid):
    """A converted body: one line per field, and per item of a list or object field."""

    expand = 2
