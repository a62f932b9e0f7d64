"""Compile a mapping's ``stream:`` section into the immutable ``StreamSpec`` the runtime executes.

The section has two halves. The *declarative* half says what to read and what to write:

* ``rules``: per upstream frame, in order, which actions to take. An action ``feed``s a delta (and
  attributes such as a tool call's id and name) into an item kind, records the ``finish`` reason or
  the ``usage``, or reports an ``error``. ``for:`` values dispatch by the frame's ``framing.dispatch``
  field (a Responses event's ``type``) through a dict, so a frame pays only for its own rules.
  (The key is not ``on:``, which YAML 1.1 reads as the boolean true.)
* ``kinds``: the item kinds (message, reasoning, function_call, ...): which index counter they use,
  their id prefix, whether several can be open at once (``keyed``), their content ``parts``, the
  events written when an item or part opens, takes a delta and closes, and the finished ``item``.
* ``start``/``end``/``fail``: the stream-level events; ``response`` and ``outcome`` build the state
  they read; ``envelope`` holds fields stamped on every event (a chat chunk's id and model).

The *lifecycle* half is not configurable, on purpose: the runtime (``engine.stream``) owns when an
item opens and closes, the dense indexes, the sequence numbers and the terminal event, so that no
mapping can emit a delta for an item it never opened. That is where every peer bridge breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .codegen import RuleCompiler
from .ops import Where
from .types import Rule

ACTIONS = ("feed", "finish", "usage", "error")


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
class Action:
    """One entry of ``rules``: what a matching frame does."""

    id: str
    action: str
    when: Rule | None
    each: Rule | None
    value: Rule | None = None           # finish / usage / error
    kind: str | None = None             # feed
    part: str | None = None
    delta: Rule | None = None
    final: Rule | None = None           # the whole text so far; the unsent rest becomes a delta
    key: Rule | None = None
    identity: Rule | None = None
    attributes: tuple[tuple[str, Rule], ...] = ()


@dataclass(frozen=True, slots=True)
class StreamSpec:
    done_in: str | None
    done_out: bool
    event_lines: bool
    sequence: str | None
    dispatch: Rule | None
    actions_by_key: dict[str, tuple[Action, ...]]
    actions_always: tuple[Action, ...]
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
    actions = [_action(action_id, rule, kinds, compiler, where)
               for action_id, rule in (section.get("rules") or {}).items()]
    by_key: dict[str, list[Action]] = {}
    always: list[Action] = []
    for action in actions:
        values = section["rules"][action.id].get("for")
        if values is None:
            always.append(action)
        else:
            for value in ([values] if isinstance(values, str) else values):
                by_key.setdefault(str(value), []).append(action)
    if always and by_key:
        # file order is evaluation order: a dispatched frame runs its own rules and the
        # undispatched ones, interleaved as written
        order = {a.id: i for i, a in enumerate(actions)}
        by_key = {key: sorted(found + always, key=lambda a: order[a.id])
                  for key, found in by_key.items()}
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
        actions_by_key={key: tuple(found) for key, found in by_key.items()},
        actions_always=tuple(always),
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


def _action(action_id: str, spec: dict[str, Any], kinds: dict[str, ItemKind], compiler: RuleCompiler,
            where: Any) -> Action:
    path = f"rules.{action_id}"
    rule_where = where(path, spec)
    found = [key for key in ACTIONS if key in spec]
    if len(found) != 1:
        raise rule_where.error(SpecError, f"a stream rule takes exactly one of {', '.join(ACTIONS)}")

    def compiled(key: str) -> Rule | None:
        return compiler.compile(spec[key], where(f"{path}.{key}", spec, key)) if key in spec else None

    common = dict(id=action_id, action=found[0], when=compiler.compile_guard(spec, rule_where),
                  each=compiled("each"))
    if found[0] != "feed":
        return Action(**common, value=compiled(found[0]))
    kind_name, _, part = str(spec["feed"]).partition(".")
    kind = kinds.get(kind_name)
    if kind is None:
        raise rule_where.error(SpecError, f"feed names no item kind '{kind_name}' (see stream.kinds)")
    if part and part not in kind.parts:
        raise rule_where.error(SpecError, f"kind '{kind_name}' has no part '{part}'")
    if kind.keyed and "key" not in spec:
        raise rule_where.error(SpecError, f"kind '{kind_name}' is keyed: the rule needs key:")
    attributes = tuple((name, compiler.compile(rule, where(f"{path}.set.{name}", spec["set"], name)))
                       for name, rule in (spec.get("set") or {}).items())
    return Action(**common, kind=kind_name, part=part or None, delta=compiled("delta"),
                  final=compiled("final"), key=compiled("key"), identity=compiled("identity"),
                  attributes=attributes)
