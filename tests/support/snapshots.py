"""JSON snapshots laid out for review: one item per line.

syrupy's JSON extension indents every level, so a 40-event stream becomes 600 lines and a diff of
one changed field is lost among them. These extensions write the same JSON (it still parses; keys
sorted) with only the outer levels expanded: a stream is one event per line, a converted body one
line per field and per list item (a message, an output item, a tool). A changed event or message
is then one changed line in review.
"""

from __future__ import annotations

import json
from typing import Any

from syrupy.extensions.json import JSONSnapshotExtension


def layout(value: Any, expand: int, indent: str = "") -> str:
    """``value`` as JSON with the outer ``expand`` levels one item per line, the rest inline."""
    if expand <= 0 or not isinstance(value, (dict, list)) or not value:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key, ensure_ascii=False)}: {layout(value[key], expand - 1, inner)}"
                 for key in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    items = [inner + layout(item, expand - 1, inner) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + indent + "]"


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
