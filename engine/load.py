"""Stage one: read mapping files, remember where everything was written, and merge overlays.

Every object and list read from YAML remembers its file and line (``LineDict``/``LineList``), so
that a schema error or a bad expression found later still points at the line that caused it, even
after overlays from several files are merged into one spec.

Overlays. A file that says ``extends: {mapping: openai-chat, version: "^1"}`` changes its base by
rule id, one level deep:

* ``options``, ``tables`` and ``maps`` are maps of entries keyed by id;
* ``request``, ``response``, ``error`` and ``stream`` are sections whose sub-maps (``fields``,
  ``drop``, ``reject``, ``echo``, ``kinds``, ``rules``, ...) are maps of entries keyed by id.

An entry in an overlay replaces the base entry with the same id whole (it is never deep-merged), a
new id is added after the base's entries, and ``null`` deletes. Only one level of ``extends`` is
allowed: an overlay's base must itself extend nothing. Several overlays compose: they all extend
the same base and apply in the order given, so the last one wins for an id both touch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import OverlayError, SpecError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MAPPINGS_DIR = PACKAGE_ROOT / "mappings"
PROVIDERS_DIR = MAPPINGS_DIR / "providers"

# Top-level keys whose value is a map of entries keyed by id.
ENTRY_MAPS = ("options", "tables", "maps")
# Top-level sections whose sub-maps are maps of entries keyed by id.
SECTION_MAPS = {
    "request": ("fields", "drop", "reject", "passthrough"),
    "response": ("fields", "echo", "drop"),
    "error": ("fields",),
    "stream": ("framing", "init", "capture", "rules", "kinds", "outcome", "response", "start", "end",
               "fail", "envelope"),
    "coverage": ("request", "response", "stream", "upstream_response", "upstream_stream"),
}
HEADER_KEYS = ("format", "id", "version", "description", "extends")


class LineDict(dict):
    """A dict that remembers the file and line it was read from, and (file, line) of each key.

    Keys carry their own file because a merged node mixes keys from a base and its overlays.
    """

    __slots__ = ("file", "line", "key_lines")


class LineList(list):
    """A list that remembers the file and line it was read from."""

    __slots__ = ("file", "line")


def _loader_for(file: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
        loader.flatten_mapping(node)
        mapping = LineDict()
        mapping.file, mapping.line, mapping.key_lines = file, node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in mapping:
                raise SpecError(f"duplicate key {key!r} (first on line {mapping.key_lines[key][1]})",
                                file=file, line=key_node.start_mark.line + 1)
            mapping[key] = loader.construct_object(value_node, deep=True)
            mapping.key_lines[key] = (file, key_node.start_mark.line + 1)
        return mapping

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LineList:
        sequence = LineList(loader.construct_object(child, deep=True) for child in node.value)
        sequence.file, sequence.line = file, node.start_mark.line + 1
        return sequence

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
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


# -- finding mapping files --------------------------------------------------------------------


def builtin_names() -> list[str]:
    """Names of the mappings that ship with mapper: base mappings, then provider overlays."""
    names = sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
    return names + sorted(p.stem for p in PROVIDERS_DIR.glob("*.yaml"))


def locate(reference: str, relative_to: Path | None = None) -> tuple[Path, str]:
    """Find a mapping by file path or built-in name; returns (path, display name).

    ``openai-chat``, ``openai-chat.yaml`` and ``deepseek`` name built-ins from any directory; a
    path to an existing file wins over a built-in of the same name.
    """
    candidate = Path(reference)
    if relative_to is not None and not candidate.is_absolute():
        near = relative_to.parent / candidate
        if near.is_file():
            return near, str(near)
    if candidate.is_file():
        return candidate, reference
    stem = reference[:-5] if reference.endswith(".yaml") else reference
    stem = stem.removeprefix("providers/")
    if "/" not in stem and "\\" not in stem:
        for folder, prefix in ((MAPPINGS_DIR, ""), (PROVIDERS_DIR, "providers/")):
            builtin = folder / f"{stem}.yaml"
            if builtin.is_file():
                return builtin, f"{prefix}{builtin.name}"
    raise OverlayError(f"no mapping file or built-in mapping named {reference!r} "
                       f"(built-in: {', '.join(builtin_names())})")


# -- overlays ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """A resolved spec and the files it was merged from, base first."""

    spec: LineDict
    sources: tuple[str, ...]


def load(reference: str, overlays: Iterable[str] = (), options: dict[str, Any] | None = None) -> Loaded:
    """Read a mapping (a base or an overlay), apply further overlays and options, in that order."""
    path, display = locate(reference)
    spec = _as_document(read_yaml(path, display), display)
    sources = [display]
    if "extends" in spec:
        base, base_display = _read_base(spec, path, display)
        spec = merge(base, spec)
        sources.insert(0, base_display)
    root_id = _root_id(spec)
    for reference in overlays:
        overlay_path, overlay_display = locate(reference)
        overlay = _as_document(read_yaml(overlay_path, overlay_display), overlay_display)
        _check_overlay_base(overlay, overlay_display, root_id)
        spec = merge(spec, overlay)
        sources.append(overlay_display)
    if options:
        spec = merge(spec, _options_overlay(options))
        sources.append("<options>")
    return Loaded(spec, tuple(sources))


def _as_document(document: Any, display: str) -> LineDict:
    if not isinstance(document, LineDict):
        raise SpecError("a mapping file must be a YAML object", file=display, line=1)
    return document


def _read_base(overlay: LineDict, path: Path, display: str) -> tuple[LineDict, str]:
    extends = overlay["extends"]
    line = overlay.key_lines.get("extends", (None, None))[1]
    if not isinstance(extends, dict) or "mapping" not in extends:
        raise OverlayError("extends needs {mapping: NAME, version: RANGE}", file=display, line=line)
    base_path, base_display = locate(str(extends["mapping"]), relative_to=path)
    base = _as_document(read_yaml(base_path, base_display), base_display)
    if "extends" in base:
        raise OverlayError(f"{base_display} extends another mapping itself; only one level of "
                           "extends is allowed (compose overlays with --overlay instead)",
                           file=display, line=line)
    wanted = extends.get("version")
    if wanted is not None and not version_matches(str(base.get("version", "")), str(wanted)):
        raise OverlayError(f"{base_display} is version {base.get('version')}, but this overlay "
                           f"needs {wanted}", file=display, line=line)
    return base, base_display


def _root_id(spec: LineDict) -> Any:
    # The merged spec of an overlay keeps its base's ``extends`` target as the root id.
    extends = spec.get("extends")
    if isinstance(extends, dict):
        return Path(str(extends.get("mapping", ""))).stem
    return spec.get("id")


def _check_overlay_base(overlay: LineDict, display: str, root_id: Any) -> None:
    extends = overlay.get("extends")
    line = overlay.key_lines.get("extends", (None, 1))[1]
    if not isinstance(extends, dict):
        raise OverlayError("a file given with --overlay must extend a base mapping", file=display,
                           line=line)
    target = Path(str(extends.get("mapping", ""))).stem
    if target != root_id:
        raise OverlayError(f"this overlay extends {target!r}, but the mapping it is applied to is "
                           f"based on {root_id!r}", file=display, line=line)


def _options_overlay(options: dict[str, Any]) -> LineDict:
    overlay = LineDict(options=LineDict(options))
    overlay.file, overlay.line, overlay.key_lines = "<options>", None, {}
    overlay["options"].file, overlay["options"].line = "<options>", None
    overlay["options"].key_lines = {}
    return overlay


def merge(base: LineDict, overlay: LineDict) -> LineDict:
    """``base`` changed by ``overlay``: entries replaced whole by id, ``null`` deletes."""
    return _merge_level(base, overlay, ENTRY_MAPS, SECTION_MAPS)


def _merge_level(base: LineDict, overlay: LineDict, entry_maps: tuple[str, ...],
                 sections: dict[str, tuple[str, ...]] | None = None) -> LineDict:
    """One level of a spec: id-keyed maps merge by entry, sections recurse, the rest is replaced."""
    merged = _copy_node(base)
    for key, value in overlay.items():
        if key in entry_maps:
            merged[key] = _merge_entries(base.get(key), value)
        elif (sections and key in sections and isinstance(value, dict)
              and isinstance(base.get(key), dict)):
            merged[key] = _merge_level(base[key], value, sections[key])
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
        _set_key_line(merged, key, overlay)
    return merged


def _merge_entries(base: Any, overlay: Any) -> Any:
    if overlay is None:
        return None
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return overlay
    merged = _copy_node(base)
    for entry_id, rule in overlay.items():
        if rule is None:
            merged.pop(entry_id, None)
            merged.key_lines.pop(entry_id, None)
        else:
            merged[entry_id] = rule
            _set_key_line(merged, entry_id, overlay)
    return merged


def _copy_node(node: LineDict) -> LineDict:
    copy = LineDict(node)
    copy.file, copy.line = getattr(node, "file", None), getattr(node, "line", None)
    copy.key_lines = dict(getattr(node, "key_lines", {}))
    return copy


def _set_key_line(target: LineDict, key: Any, source: LineDict) -> None:
    lines = getattr(source, "key_lines", None)
    if lines and key in lines:
        target.key_lines[key] = lines[key]


# -- versions ---------------------------------------------------------------------------------

_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _parts(version: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(version.strip())
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def version_matches(version: str, wanted: str) -> bool:
    """``^1`` / ``^1.2`` (same major, at least that), ``>=1.2``, or an exact ``1.2.3``."""
    have = _parts(version)
    if have is None:
        return False
    wanted = wanted.strip()
    if wanted.startswith("^"):
        floor = _parts(wanted[1:])
        return floor is not None and have[0] == floor[0] and have >= floor
    if wanted.startswith(">="):
        floor = _parts(wanted[2:])
        return floor is not None and have >= floor
    exact = _parts(wanted)
    return exact is not None and have == exact
