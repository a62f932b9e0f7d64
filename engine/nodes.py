"""YAML read into nodes that remember where they were written.

Every object and list read from a mapping file remembers its file and line (``LineDict``/``LineList``),
and an object the position of each key, so that a schema error or a bad expression found later still
points at the line that caused it, even after overlays from several files are merged into one spec.

An object tagged ``!replace`` in an overlay reads as a ``Replace`` node: the merge puts it in place of
the base's object instead of merging into it (see ``engine.merge``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

REPLACE_TAG = "!replace"


class LineDict(dict):
    """A dict that remembers the file and line it was read from, and (file, line) of each key.

    Keys carry their own file because a merged node mixes keys from a base and its overlays.
    """

    __slots__ = ("file", "line", "key_lines")


class Replace(LineDict):
    """An overlay's object tagged ``!replace``: it replaces the base's object whole."""

    __slots__ = ()


class LineList(list):
    """A list that remembers the file and line it was read from, and the line of each item."""

    __slots__ = ("file", "line", "item_lines")


def new_dict(file: str | None, line: int | None, kind: type[LineDict] = LineDict) -> LineDict:
    """An empty node of ``kind`` located at ``file``:``line``."""
    node = kind()
    node.file, node.line, node.key_lines = file, line, {}
    return node


def _loader_for(file: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.Node,
                          kind: type[LineDict] = LineDict) -> LineDict:
        if not isinstance(node, yaml.MappingNode):
            raise SpecError(f"{REPLACE_TAG} goes on an object (a list or a value replaces the base's "
                            "anyway)", file=file, line=node.start_mark.line + 1)
        loader.flatten_mapping(node)
        mapping = new_dict(file, node.start_mark.line + 1, kind)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in mapping:
                raise SpecError(f"duplicate key {key!r} (first on line {mapping.key_lines[key][1]})",
                                file=file, line=key_node.start_mark.line + 1)
            mapping[key] = loader.construct_object(value_node, deep=True)
            mapping.key_lines[key] = (file, key_node.start_mark.line + 1)
        return mapping

    def construct_replace(loader: yaml.SafeLoader, node: yaml.Node) -> LineDict:
        return construct_mapping(loader, node, Replace)

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LineList:
        sequence = LineList(loader.construct_object(child, deep=True) for child in node.value)
        sequence.file, sequence.line = file, node.start_mark.line + 1
        sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
        return sequence

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    Loader.add_constructor(REPLACE_TAG, construct_replace)
    return Loader


def read_yaml(path: Path, display: str | None = None) -> Any:
    """Parse one YAML file into ``LineDict``/``LineList`` nodes. Raises ``SpecError``."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(f"cannot read mapping file: {error.strerror}", file=name) from None
    try:
        return yaml.load(text, Loader=_loader_for(name))  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise SpecError(f"YAML syntax: {error.problem}", file=name,
                        line=mark.line + 1 if mark else None) from None


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Replace, lambda dumper, node: dumper.represent_mapping(REPLACE_TAG, dict(node)))
_Dumper.add_representer(LineDict, lambda dumper, node: dumper.represent_dict(dict(node)))
_Dumper.add_representer(LineList, lambda dumper, node: dumper.represent_list(list(node)))
_Dumper.add_representer(tuple, lambda dumper, node: dumper.represent_list(list(node)))


def write_yaml(document: Any) -> str:
    """``document`` as YAML in written order; a ``Replace`` object is written with its tag."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
