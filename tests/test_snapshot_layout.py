"""The snapshot layout: the same JSON, only the outer levels one item per line."""

from __future__ import annotations

import json

from support.snapshots import layout

BODY = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "é"}]}],
        "empty": [], "stream": True}


def test_layout_is_the_same_json() -> None:
    for expand in (0, 1, 2, 3):
        assert json.loads(layout(BODY, expand)) == BODY


def test_only_the_outer_levels_are_expanded() -> None:
    long = {**BODY, "messages": BODY["messages"] * 2}  # a field too long for one line
    assert layout(long, 2).splitlines() == [
        "{",
        '  "empty": [],',
        '  "messages": [',
        '    {"content": [{"text": "é", "type": "text"}], "role": "user"},',
        '    {"content": [{"text": "é", "type": "text"}], "role": "user"}',
        "  ],",
        '  "model": "m",',
        '  "stream": true',
        "}",
    ]
    # a field that fits on its line stays there
    assert '  "messages": [{"content": [{"text": "é", "type": "text"}], "role": "user"}],' in layout(BODY, 2)
    events = [{"type": "a", "n": 1}, {"type": "b"}]
    assert layout(events, 1) == '[\n  {"n": 1, "type": "a"},\n  {"type": "b"}\n]'
    assert layout(events, 0) == '[{"n": 1, "type": "a"}, {"type": "b"}]'
