"""Hypothesis strategies shared by the stream property tests."""

from __future__ import annotations

import json
import string
from typing import Any

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
