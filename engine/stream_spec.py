"""Compile a mapping's ``stream:`` section into the immutable ``StreamSpec`` the runtime executes.

The section has two halves. The *declarative* half says what to read and what to write:

* ``rules``: per upstream frame, in order, which actions to take. An action ``feed``s a delta (and
  attributes such as a tool call's id and name, and lists that travel with the delta such as its
  logprobs: ``collect``) into an item kind, records the ``finish`` reason or the ``usage``, or
  reports an ``error``. ``engine.stream_compile`` compiles them to one generated function per
  frame type, dispatched by the frame's ``framing.dispatch`` field.
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

from dataclasses import dataclass
from typing import Any

from .codegen import RuleCompiler
from .ops import Where, plain
from .stream_compile import FrameHandler, compile_frame_handlers
from .types import Rule


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
    joiner: str | None  # sent before the text of every item of the kind but the first that has text
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
    handlers: dict[str, FrameHandler]
    default_handler: FrameHandler
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
    one_open: bool = False  # items never overlap: a later one is held until the open one closes
    # an event the proxy sends after this many seconds without one (a keep-alive), and the event
    heartbeat_every: float | None = None
    heartbeat: dict[str, Any] | None = None


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
    handlers, default_handler = compile_frame_handlers(section.get("rules") or {}, kinds, compiler, where)
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
        one_open=bool(framing.get("one_open", False)),
        heartbeat_every=float(framing["heartbeat"]["every"]) if framing.get("heartbeat") else None,
        heartbeat=plain(framing["heartbeat"]["event"]) if framing.get("heartbeat") else None,
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
        joiner=spec.get("joiner"),
        parts=parts,
        open=events(spec.get("open"), f"{path}.open"),
        delta=events(spec.get("delta"), f"{path}.delta"),
        close=events(spec.get("close"), f"{path}.close"),
        item=compiler.compile(spec["item"], where(f"{path}.item", spec, "item")) if "item" in spec else None,
    )
