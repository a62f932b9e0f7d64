"""Compile a mapping's ``stream:`` section into the immutable ``StreamSpec`` the runtime executes.

The section has two halves. The *declarative* half says what to read and what to write:

* ``rules``: per upstream frame, in order, which actions to take. An action ``feed``s a delta (and
  attributes such as a tool call's id and name, and lists that travel with the delta such as its
  logprobs: ``collect``) into an item kind, records the ``finish`` reason or
  the ``usage``, or reports an ``error``. The rules compile to one generated function per frame
  type (``RuleCompiler.compile_frame_rules``), which calls the machine only when a frame has
  something for it. ``for:`` values dispatch by the frame's ``framing.dispatch``
  field (a Responses event's ``type``) through a dict, so a frame pays only for its own rules.
  (The key is not ``on:``, which YAML 1.1 reads as the boolean true.)
* ``kinds``: the item kinds (message, reasoning, function_call, ...): which index counter they use,
  their id prefix, whether several can be open at once (``keyed``), their content ``parts``, the
  events written when an item or part opens, takes a delta and closes, and the finished ``item``.
* ``start``/``end``/``fail``: the stream-level events; ``response`` and ``outcome`` build the state
  they read; ``envelope`` holds fields stamped on every event (a chat chunk's id and model).
* ``prepare``: a rule run on each upstream frame before anything reads it; its value replaces the
  frame (no value skips it). A chat upstream that ignores ``n`` sends several choices, and the
  rules read ``choices[0]``: this is where the frame keeps only the choice they may read.

The *lifecycle* half is not configurable, on purpose: the runtime (``engine.stream``) owns when an
item opens and closes, the dense indexes, the sequence numbers and the terminal event, so that no
mapping can emit a delta for an item it never opened. That is where every peer bridge breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import SpecError
from .codegen import RuleCompiler
from .ops import Where
from .types import Rule

ACTIONS = ("feed", "finish", "usage", "error")
# what the runtime itself puts in an item's or a part's scope (engine.stream)
_RUNTIME_NAMES = frozenset({"id", "status", "content", "text", "delta", "key", "item",
                            "content_index"})


@dataclass(frozen=True, slots=True)
class EventRule:
    """One event the runtime may write: a rule that builds it, or gives no value to skip it."""

    id: str
    build: Rule


@dataclass(frozen=True, slots=True)
class PartKind:
    """A content part inside an item (``output_text``, ``refusal``, ``reasoning_text``)."""

    name: str
    open: tuple[EventRule, ...]
    delta: tuple[EventRule, ...]
    close: tuple[EventRule, ...]
    part: Rule | None


@dataclass(frozen=True, slots=True)
class ItemKind:
    """An output item kind and its lifecycle events."""

    name: str
    counter: str | None
    id_prefix: str | None
    keyed: bool
    accumulate: bool
    parts: dict[str, PartKind]
    open: tuple[EventRule, ...]
    delta: tuple[EventRule, ...]
    close: tuple[EventRule, ...]
    item: Rule | None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    done_in: str | None
    done_out: bool
    event_lines: bool
    sequence: str | None
    dispatch: Rule | None
    # generated functions (frame, ctx, machine) running the rules for one frame: by the value of
    # the dispatch field, and for every other frame
    handlers: dict[str, Callable[..., None]]
    default_handler: Callable[..., None]
    init: tuple[tuple[str, Rule], ...]
    capture: tuple[tuple[str, Rule], ...]
    kinds: dict[str, ItemKind]
    counters: tuple[str, ...]
    outcome: tuple[tuple[str, Rule], ...]
    response: Rule
    start: tuple[EventRule, ...]
    end: tuple[EventRule, ...]
    fail: tuple[EventRule, ...]
    envelope: Rule | None = None
    prepare: Rule | None = None  # rewrites each upstream frame before capture and rules see it
    options: dict[str, Any] = field(default_factory=dict)


def compile_stream(spec: dict[str, Any], compiler: RuleCompiler) -> StreamSpec:
    """Compile ``spec["stream"]`` with the mapping's compiler (its maps, tables and functions)."""
    section = spec["stream"]
    framing = section.get("framing") or {}
    typed = bool(framing.get("typed", True))

    def where(path: str, node: Any = None, key: Any = None) -> Where:
        return Where(None, None, f"stream.{path}").inside(node if node is not None else section, key)

    def events(block: Any, path: str) -> tuple[EventRule, ...]:
        return tuple(
            EventRule(event_id, compiler.compile(_typed_event(rule, event_id, typed),
                                                 where(f"{path}.{event_id}", block, event_id)))
            for event_id, rule in (block or {}).items()
        )

    def fields(block: Any, path: str) -> tuple[tuple[str, Rule], ...]:
        return tuple((name, compiler.compile(rule, where(f"{path}.{name}", block, name)))
                     for name, rule in (block or {}).items())

    kinds = {name: _kind(name, kind, events, compiler, where)
             for name, kind in (section.get("kinds") or {}).items()}
    rules = [_rule(rule_id, rule, kinds, where)
             for rule_id, rule in (section.get("rules") or {}).items()]
    by_key: dict[str, list[tuple]] = {}
    always: list[tuple] = []
    for rule in rules:
        values = rule[1].get("for")
        if values is None:
            always.append(rule)
        else:
            for value in ([values] if isinstance(values, str) else values):
                by_key.setdefault(str(value), []).append(rule)
    # file order is evaluation order: a dispatched frame runs its own rules and the undispatched
    # ones, interleaved as written
    order = {rule[0]: number for number, rule in enumerate(rules)}
    handlers = {key: compiler.compile_frame_rules(sorted(found + always, key=lambda r: order[r[0]]),
                                                  where(f"rules.for.{key}"))
                for key, found in by_key.items()}
    default_handler = compiler.compile_frame_rules(always, where("rules"))
    dispatch = framing.get("dispatch")
    response_fields = dict(section.get("response") or {})
    echo = (spec.get("response") or {}).get("echo") or {}
    response = compiler.compile_fields({**response_fields, **echo}, where("response"))
    envelope = (compiler.compile_fields(section["envelope"], where("envelope"))
                if section.get("envelope") else None)
    counters = tuple(sorted({k.counter for k in kinds.values() if k.counter}))
    return StreamSpec(
        done_in=framing.get("done_in"),
        done_out=bool(framing.get("done_out", False)),
        event_lines=bool(framing.get("event_lines", typed)),
        sequence=framing.get("sequence"),
        dispatch=compiler.compile(dispatch, where("framing.dispatch")) if dispatch else None,
        handlers=handlers,
        default_handler=default_handler,
        init=fields(section.get("init"), "init"),
        capture=fields(section.get("capture"), "capture"),
        kinds=kinds,
        counters=counters,
        outcome=fields(section.get("outcome"), "outcome"),
        response=response,
        start=events(section.get("start"), "start"),
        end=events(section.get("end"), "end"),
        fail=events(section.get("fail"), "fail"),
        envelope=envelope,
        prepare=compiler.compile(section["prepare"], where("prepare", section, "prepare"))
        if section.get("prepare") is not None else None,
    )


def _typed_event(rule: Any, event_id: str, typed: bool) -> Any:
    """In a typed stream, an event's id is its ``type`` unless the rule writes one itself."""
    if not typed or not isinstance(rule, dict) or not isinstance(rule.get("emit"), dict):
        return rule
    if "type" in rule["emit"]:
        return rule
    emit = type(rule["emit"])([("type", {"value": event_id})])
    emit.update(rule["emit"])
    for attribute in ("file", "line", "key_lines"):
        if hasattr(rule["emit"], attribute):
            setattr(emit, attribute, getattr(rule["emit"], attribute))
    typed_rule = type(rule)(rule)
    for attribute in ("file", "line", "key_lines"):
        if hasattr(rule, attribute):
            setattr(typed_rule, attribute, getattr(rule, attribute))
    typed_rule["emit"] = emit
    return typed_rule


def _kind(name: str, spec: dict[str, Any], events: Any, compiler: RuleCompiler, where: Any) -> ItemKind:
    path = f"kinds.{name}"
    parts = {}
    for part_name, part in (spec.get("parts") or {}).items():
        part_path = f"{path}.parts.{part_name}"
        parts[part_name] = PartKind(
            name=part_name,
            open=events(part.get("open"), f"{part_path}.open"),
            delta=events(part.get("delta"), f"{part_path}.delta"),
            close=events(part.get("close"), f"{part_path}.close"),
            part=compiler.compile(part["part"], where(f"{part_path}.part", part, "part"))
            if "part" in part else None,
        )
    return ItemKind(
        name=name,
        counter=spec.get("counter"),
        id_prefix=spec.get("id"),
        keyed=bool(spec.get("keyed", False)),
        accumulate=bool(spec.get("accumulate", True)),
        parts=parts,
        open=events(spec.get("open"), f"{path}.open"),
        delta=events(spec.get("delta"), f"{path}.delta"),
        close=events(spec.get("close"), f"{path}.close"),
        item=compiler.compile(spec["item"], where(f"{path}.item", spec, "item")) if "item" in spec else None,
    )


def _rule(rule_id: str, spec: dict[str, Any], kinds: dict[str, ItemKind],
          where: Any) -> tuple[str, dict[str, Any], Where, ItemKind | None, PartKind | None]:
    """Check one entry of ``rules``; the code generator writes what it does."""
    rule_where = where(f"rules.{rule_id}", spec)
    found = [key for key in ACTIONS if key in spec]
    if len(found) != 1:
        raise rule_where.error(SpecError, f"a stream rule takes exactly one of {', '.join(ACTIONS)}")
    if found[0] != "feed":
        for key in ("collect", "set", "delta", "final", "key", "identity"):
            if key in spec:
                raise rule_where.error(SpecError, f"{key}: belongs to a feed rule, not a {found[0]} rule")
        return rule_id, spec, rule_where, None, None
    kind_name, _, part = str(spec["feed"]).partition(".")
    kind = kinds.get(kind_name)
    if kind is None:
        raise rule_where.error(SpecError, f"feed names no item kind '{kind_name}' (see stream.kinds)")
    if part and part not in kind.parts:
        raise rule_where.error(SpecError, f"kind '{kind_name}' has no part '{part}'")
    if kind.keyed and "key" not in spec:
        raise rule_where.error(SpecError, f"kind '{kind_name}' is keyed: the rule needs key:")
    taken = _RUNTIME_NAMES | set(spec.get("set") or ()) | ({kind.counter} if kind.counter else set())
    for name in spec.get("collect") or ():
        if name in taken:
            raise rule_where.inside(spec["collect"], name).error(
                SpecError, f"collect: '{name}' is a name the item's events already read")
    return rule_id, spec, rule_where, kind, kind.parts[part] if part else None
