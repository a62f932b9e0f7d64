"""Hypothesis strategies shared by the stream property tests."""

from __future__ import annotations

import copy
import json
import string
from typing import Any, Sequence

from hypothesis import strategies as st

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=40)
NAMES = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=12)
ARGUMENTS = st.dictionaries(NAMES, st.one_of(st.integers(), TEXT, st.booleans()), max_size=3).map(
    lambda value: json.dumps(value, ensure_ascii=False))


def fragments(draw: Any, text: str) -> list[str]:
    """``text`` cut at random character offsets; the pieces join back to it."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=6))))
    cuts = [c for c in cuts if 0 < c < len(text)]
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(edges, edges[1:])]


def byte_pieces(draw: Any, raw: bytes) -> list[bytes]:
    """``raw`` split at random byte offsets (possibly inside a UTF-8 character)."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(raw)), max_size=12))))
    edges = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in zip(edges, edges[1:])]


@st.composite
def mutated_stream(
    draw: Any, streams: Sequence[list[Any]], values: st.SearchStrategy[Any], *,
    keys: Sequence[str] = (), nested: Sequence[str] = (),
) -> list[Any]:
    """A copy of one of ``streams`` with one to three random edits, for "reports instead of crashing" tests.

    An edit drops, duplicates, swaps or replaces an event (by one of ``values``), or sets one of an
    event's keys (or of ``keys``) to one of ``values``; with ``nested``, possibly inside the event's
    object under one of those keys (``delta``, ``content_block``, ...). Drawn values are copied: a later
    edit may write into one, and ``st.just({})`` hands out the same dict to every example.
    """
    events = copy.deepcopy(draw(st.sampled_from(streams)))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(events) - 1))
        action = draw(st.sampled_from(["drop", "duplicate", "swap", "set", "replace"]))
        if action == "drop" and len(events) > 1:
            del events[position]
        elif action == "duplicate":
            events.insert(position, copy.deepcopy(events[position]))
        elif action == "swap":
            other = draw(st.integers(0, len(events) - 1))
            events[position], events[other] = events[other], events[position]
        elif action == "set" and isinstance(events[position], dict):
            target = events[position]
            for key in nested:
                if isinstance(target.get(key), dict) and draw(st.booleans()):
                    target = target[key]
            target[draw(st.sampled_from(sorted(target) + list(keys)))] = copy.deepcopy(draw(values))
        elif action == "replace":
            events[position] = copy.deepcopy(draw(values))
    return events
