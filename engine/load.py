"""Stage one: find mapping files, read them, and apply overlays: ``extends``, ``include``, ``--overlay``.

A base mapping stands alone. An overlay says ``extends: {mapping: openai-chat, version: "^1"}`` and
only what differs from that base; ``engine.merge`` says how its entries merge (by key at any depth,
``null`` deletes, lists replace, ``!replace``, a rule whose source changes is replaced whole).

* ``--mapping OVERLAY`` loads the overlay's base, then the overlay.
* ``--overlay X`` (repeatable) applies further overlays of the same base, in the order given.
* ``include: [A, B]`` applies A and B before the including file's own entries. An overlay includes
  overlays of the same base; a base or an overlay includes *parts*: files with ``part: NAME``
  instead of ``id``/``version``/``extends`` that hold entries several mappings share (the
  Messages-side writer of both Anthropic mappings, ``mappings/parts/``). A file is applied once
  however often it is included, an include cycle is an error at the ``include`` line that closes it.

Only one level of ``extends`` is allowed (an overlay's base extends nothing), and every overlay's
``extends.version`` must match the base's version, however it was given: as the mapping, with
``--overlay``, or through ``include``. Options (``--option``) apply last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import OverlayError, SpecError
from .merge import merge
from .nodes import LineDict, LineList, new_dict, read_yaml
from .schema import ENTRY_MAPS, SECTION_MAPS

__all__ = [
    "ENTRY_MAPS",
    "MAPPINGS_DIR",
    "PACKAGE_ROOT",
    "PROVIDERS_DIR",
    "SECTION_MAPS",
    "LineDict",
    "LineList",
    "Loaded",
    "builtin_names",
    "load",
    "locate",
    "merge",
    "read_yaml",
    "version_matches",
]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MAPPINGS_DIR = PACKAGE_ROOT / "mappings"
PROVIDERS_DIR = MAPPINGS_DIR / "providers"
PARTS_DIR = MAPPINGS_DIR / "parts"


# -- finding mapping files --------------------------------------------------------------------


def builtin_names() -> list[str]:
    """Names of the mappings that ship with mapper: base mappings, then provider overlays."""
    names = sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
    return names + sorted(p.stem for p in PROVIDERS_DIR.glob("*.yaml"))


def locate(reference: str, relative_to: Path | None = None) -> tuple[Path, str]:
    """Find a mapping by file path or built-in name; returns (path, display name).

    ``openai-chat``, ``openai-chat.yaml`` and ``deepseek`` name built-ins from any directory, and
    ``parts/anthropic-messages`` a built-in part; a path to an existing file wins over a built-in
    of the same name.
    """
    candidate = Path(reference)
    if relative_to is not None and not candidate.is_absolute():
        near = relative_to.parent / candidate
        if near.is_file():
            return near, str(near)
    if candidate.is_file():
        return candidate, reference
    stem = reference[:-5] if reference.endswith(".yaml") else reference
    if stem.startswith("parts/"):
        folders: tuple[tuple[Path, str], ...] = ((PARTS_DIR, "parts/"),)
        stem = stem.removeprefix("parts/")
    else:
        folders = ((MAPPINGS_DIR, ""), (PROVIDERS_DIR, "providers/"))
        stem = stem.removeprefix("providers/")
    if "/" not in stem and "\\" not in stem:
        for folder, prefix in folders:
            builtin = folder / f"{stem}.yaml"
            if builtin.is_file():
                return builtin, f"{prefix}{builtin.name}"
    raise OverlayError(f"no mapping file or built-in mapping named {reference!r} "
                       f"(built-in: {', '.join(builtin_names())})")


# -- overlays ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """A resolved spec, the files it was merged from (base first), and the base as written."""

    spec: LineDict
    sources: tuple[str, ...]
    base: LineDict


@dataclass(frozen=True, slots=True)
class _Base:
    spec: LineDict
    display: str
    names: frozenset[str]  # what an overlay's extends.mapping may call it: its file stem and its id
    parts: tuple[str, ...] = ()  # the parts it includes, merged under its own entries

    @property
    def version(self) -> str:
        return str(self.spec.get("version", ""))


def load(reference: str, overlays: Iterable[str] = (), options: dict[str, Any] | None = None) -> Loaded:
    """Read a mapping (a base or an overlay), apply further overlays and options, in that order."""
    path, display = locate(reference)
    document = _read_document(path, display)
    if "part" in document:
        raise OverlayError("a part (a file with part:) is not a mapping; a mapping includes it",
                           file=display, line=_key_line(document, "part"))
    if "extends" in document:
        applier = _Applier(_read_base(document, path, display))
        applier.apply(document, path, display)
    else:
        applier = _Applier(_base(document, path, display))
    for overlay_reference in overlays:
        overlay_path, overlay_display = locate(overlay_reference)
        overlay = _read_document(overlay_path, overlay_display)
        if "extends" not in overlay:
            raise OverlayError("a file given with --overlay must extend a base mapping",
                               file=overlay_display, line=1)
        applier.apply(overlay, overlay_path, overlay_display)
    spec, sources = applier.spec, applier.sources
    if options:
        spec = merge(spec, _options_overlay(options))
        sources.append("<options>")
    return Loaded(spec, tuple(sources), applier.base.spec)


def _read_document(path: Path, display: str) -> LineDict:
    document = read_yaml(path, display)
    if not isinstance(document, LineDict):
        raise SpecError("a mapping file must be a YAML object", file=display, line=1)
    return document


def _key_line(node: LineDict, key: str) -> int | None:
    return node.key_lines.get(key, (None, None))[1]


def _read_base(overlay: LineDict, path: Path, display: str) -> _Base:
    extends = overlay["extends"]
    line = _key_line(overlay, "extends")
    if not isinstance(extends, dict) or "mapping" not in extends:
        raise OverlayError("extends needs {mapping: NAME, version: RANGE}", file=display, line=line)
    base_path, base_display = locate(str(extends["mapping"]), relative_to=path)
    base = _read_document(base_path, base_display)
    if "extends" in base:
        raise OverlayError(f"{base_display} extends another mapping itself; only one level of "
                           "extends is allowed (an overlay includes other overlays instead, or "
                           "compose them with --overlay)", file=display, line=line)
    return _base(base, base_path, base_display)


def _base(document: LineDict, path: Path, display: str) -> _Base:
    """A base mapping as its overlays see it: the parts it includes, then its own entries."""
    spec, sources = new_dict(display, None), []
    for part, part_display in _parts_of(document, path, display):
        spec = merge(spec, part, null_deletes=False)
        sources.append(part_display)
    spec = merge(spec, _without(document, "include"), null_deletes=False) if sources else document
    return _Base(spec, display, frozenset({path.stem, str(document.get("id"))}), tuple(sources))


# What a part may not say: it is not a mapping of its own, and what it says is merged as it stands
_PART_FORBIDS = ("id", "version", "from", "to", "extends", "include")
_PART_LABELS = ("format", "part", "description")


def _parts_of(document: LineDict, path: Path, display: str) -> list[tuple[LineDict, str]]:
    """The parts a base includes, read and checked, without their labels, in order."""
    parts = []
    for reference, line in _includes(document, display):
        part_path, part_display = locate(reference, relative_to=path)
        parts.append((_read_part(part_path, part_display, included_by=f"{display}:{line}"),
                      part_display))
    return parts


def _read_part(path: Path, display: str, included_by: str) -> LineDict:
    part = _read_document(path, display)
    if "part" not in part:
        raise OverlayError(f"{display} is not a part (it has no part:); a base mapping includes "
                           f"only parts (included by {included_by})", file=display, line=1)
    for key in _PART_FORBIDS:
        if key in part:
            raise OverlayError(f"a part does not say {key}: it is merged into the mapping that "
                               f"includes it (included by {included_by})", file=display,
                               line=_key_line(part, key))
    for key in _PART_LABELS:
        part = _without(part, key)
    return part


@dataclass(slots=True)
class _Applier:
    """Applies overlays to one base, in order, includes first, each file once."""

    base: _Base
    spec: LineDict = field(init=False)
    sources: list[str] = field(init=False)
    applied: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.spec, self.sources = self.base.spec, [*self.base.parts, self.base.display]

    def apply(self, overlay: LineDict, path: Path, display: str,
              chain: tuple[tuple[Path, str], ...] = (), included_by: str = "") -> None:
        self._check_extends(overlay, display, included_by)
        if path.resolve() in self.applied:  # given again with --overlay: already in place
            return
        chain = (*chain, (path.resolve(), display))
        for reference, line in _includes(overlay, display):
            where = f"{display}:{line}"
            included_path, included_display = locate(reference, relative_to=path)
            key = included_path.resolve()
            if key in {seen for seen, _ in chain}:
                names = [name for _, name in chain] + [included_display]
                raise OverlayError(f"include cycle: {' -> '.join(names)}", file=display, line=line)
            if key in self.applied:
                continue
            included = _read_document(included_path, included_display)
            if "part" in included:
                part = _read_part(included_path, included_display, where)
                self.spec = merge(self.spec, part, null_deletes=False)
                self.sources.append(included_display)
                self.applied.add(key)
                continue
            if "extends" not in included:
                raise OverlayError(f"{included_display} is neither an overlay (extends:) nor a part "
                                   "(part:); only those can be included", file=display, line=line)
            self.apply(included, included_path, included_display, chain, included_by=where)
        self.spec = merge(self.spec, _without(overlay, "include"))
        self.sources.append(display)
        self.applied.add(path.resolve())

    def _check_extends(self, overlay: LineDict, display: str, included_by: str) -> None:
        extends = overlay["extends"]
        line = _key_line(overlay, "extends")
        by = f" (included by {included_by})" if included_by else ""
        if not isinstance(extends, dict) or "mapping" not in extends:
            raise OverlayError(f"extends needs {{mapping: NAME, version: RANGE}}{by}", file=display,
                               line=line)
        target = Path(str(extends["mapping"])).stem
        if target not in self.base.names:
            raise OverlayError(f"this overlay extends {target!r}, but the mapping it is applied to "
                               f"is based on {self.base.display}{by}", file=display, line=line)
        wanted = extends.get("version")
        if wanted is not None and not version_matches(self.base.version, str(wanted)):
            raise OverlayError(f"{self.base.display} is version {self.base.version or '(none)'}, "
                               f"but this overlay needs {wanted}{by}", file=display, line=line)


def _includes(overlay: LineDict, display: str) -> list[tuple[str, int | None]]:
    """The overlays ``overlay`` includes, each with the line that names it."""
    included = overlay.get("include")
    if included is None:
        return []
    line = _key_line(overlay, "include")
    if not isinstance(included, list) or not all(isinstance(item, str) and item for item in included):
        raise OverlayError("include takes a list of overlay names or paths", file=display, line=line)
    lines = getattr(included, "item_lines", None) or [line] * len(included)
    return list(zip(included, lines))


def _without(node: LineDict, key: str) -> LineDict:
    if key not in node:
        return node
    copy = new_dict(node.file, node.line)
    copy.update((k, v) for k, v in node.items() if k != key)
    copy.key_lines = {k: v for k, v in node.key_lines.items() if k != key}
    return copy


def _options_overlay(options: dict[str, Any]) -> LineDict:
    overlay = new_dict("<options>", None)
    overlay["options"] = new_dict("<options>", None)
    overlay["options"].update(options)
    return overlay


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
