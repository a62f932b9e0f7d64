"""Compile a stream's ``rules:`` into the functions that run on each upstream frame.

A stream rule reads one upstream frame and tells the runtime (``engine.stream``) what it holds: a
delta (with attributes, and lists that travel with it) to ``feed`` into an item kind, the
``finish`` reason, the ``usage``, or an ``error``. The rules of one frame type compile to one
generated function ``(frame, ctx, machine)`` that evaluates each rule's guard, delta, final text and
attributes inline, with the mapping's ``RuleCompiler``, and calls the machine only when the frame
has something for it: most frames carry one field out of the several the rules look at.

``for:`` values dispatch by the frame's ``framing.dispatch`` field (a Responses event's ``type``)
through a dict, so a frame pays only for its own rules and the undispatched ones, which run in file
order among them. (The key is not ``on:``, which YAML 1.1 reads as the boolean true.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .codegen import RuleCompiler
from .errors import SpecError
from .ops import Where
from .source import SourceWriter

if TYPE_CHECKING:
    from .stream_spec import ItemKind, PartKind

ACTIONS = ("feed", "finish", "usage", "error")
# what the runtime itself puts in an item's or a part's scope (engine.stream)
_RUNTIME_NAMES = frozenset({"id", "status", "content", "text", "delta", "key", "item",
                            "content_index"})

FrameHandler = Callable[..., None]
"""A generated ``(frame, ctx, machine) -> None`` running the rules for one kind of frame."""


@dataclass(frozen=True, slots=True)
class FrameRule:
    """One checked entry of ``rules``; ``kind``/``part`` are what a ``feed`` rule names."""

    id: str
    spec: dict[str, Any]
    where: Where
    kind: ItemKind | None
    part: PartKind | None


def compile_frame_handlers(rules: dict[str, Any], kinds: dict[str, ItemKind], compiler: RuleCompiler,
                           where: Callable[..., Where]) -> tuple[dict[str, FrameHandler], FrameHandler]:
    """The handlers by dispatch value, and the one for every other frame.

    ``where(path, node)`` locates a part of the ``stream:`` section. Raises ``SpecError``.
    """
    checked = [check_rule(rule_id, rule, kinds, where(f"rules.{rule_id}", rule))
               for rule_id, rule in rules.items()]
    by_key: dict[str, list[FrameRule]] = {}
    always: list[FrameRule] = []
    for rule in checked:
        values = rule.spec.get("for")
        if values is None:
            always.append(rule)
        else:
            for value in ([values] if isinstance(values, str) else values):
                by_key.setdefault(str(value), []).append(rule)
    # file order is evaluation order: a dispatched frame runs its own rules and the undispatched
    # ones, interleaved as written
    order = {rule.id: number for number, rule in enumerate(checked)}
    handlers = {key: compile_frame_rules(compiler, sorted(found + always, key=lambda r: order[r.id]),
                                         where(f"rules.for.{key}"))
                for key, found in by_key.items()}
    return handlers, compile_frame_rules(compiler, always, where("rules"))


def compile_frame_rules(compiler: RuleCompiler, rules: list[FrameRule], where: Where) -> FrameHandler:
    """One function ``(frame, ctx, machine)`` that runs ``rules``, in order, on one upstream frame."""
    w = compiler.writer()
    for rule in rules:
        w(f"# {rule.id}")
        with compiler.guarded(w, rule.spec, "scope", rule.where):
            if "each" in rule.spec:
                items = compiler.path(w, rule.spec["each"], "scope",
                                      rule.where.inside(rule.spec, "each")).expr
                item = w.var("item")
                with w.block(f"for {item} in {items} or ():"):
                    _frame_action(compiler, w, rule, item)
            else:
                _frame_action(compiler, w, rule, "scope")
    w("return None")
    return compiler.function(w, where, arguments="scope, ctx, machine")


def _frame_action(compiler: RuleCompiler, w: SourceWriter, rule: FrameRule, scope: str) -> None:
    spec, where = rule.spec, rule.where

    def value_of(key: str, node: Any = spec, name: Any = None) -> str:
        name = key if name is None else name
        return compiler.rule(w, node[name], scope, where.inside(node, name)).expr

    if "feed" not in spec:
        action = next(key for key in ("finish", "usage", "error") if key in spec)
        value = value_of(action)
        if action == "finish":
            w(f"machine.finish({value})")
        else:
            with w.block(f"if {value} is not None:"):
                w(f"machine.{'set_usage' if action == 'usage' else 'upstream_error'}({value})")
        w("if machine.finished: return None")
        return
    delta = value_of("delta") if "delta" in spec else "None"
    final = value_of("final") if "final" in spec else "None"
    attributes = [(name, value_of("set", spec["set"], name)) for name in spec.get("set") or {}]
    # the machine is called only when this frame has a delta, a final text or an attribute
    present = [term for term in (delta, final) if term != "None"]
    present += [f"{value} is not None" for _, value in attributes]
    if not present:
        return
    kind = rule.kind
    with w.block(f"if {' or '.join(present)}:"):
        key = value_of("key") if "key" in spec else "None"
        identity = value_of("identity") if kind.keyed and "identity" in spec else "None"
        collected = [(name, value_of("collect", spec["collect"], name))
                     for name in spec.get("collect") or {}]
        segment = value_of("segment") if "segment" in spec else "None"
        part = w.constant(rule.part, "PART") if rule.part is not None else "None"
        w(f"machine.feed_item({w.constant(kind, 'KIND')}, {part}, {delta}, {final}, "
          f"{key}, {identity}, {_pairs(attributes)}, {_pairs(collected)}, {segment})")
        w("if machine.finished: return None")


def _pairs(pairs: list[tuple[str, str]]) -> str:
    """``[(name, variable)]`` as the source of a tuple of ``(name, value)`` pairs."""
    return "(" + "".join(f"({name!r}, {value}), " for name, value in pairs) + ")"


def check_rule(rule_id: str, spec: dict[str, Any], kinds: dict[str, ItemKind], where: Where) -> FrameRule:
    """Check one entry of ``rules`` against the item kinds; the code generator writes what it does."""
    found = [key for key in ACTIONS if key in spec]
    if len(found) != 1:
        raise where.error(SpecError, f"a stream rule takes exactly one of {', '.join(ACTIONS)}")
    if found[0] != "feed":
        for key in ("collect", "set", "delta", "final", "key", "identity", "segment"):
            if key in spec:
                raise where.error(SpecError, f"{key}: belongs to a feed rule, not a {found[0]} rule")
        return FrameRule(rule_id, spec, where, None, None)
    kind_name, _, part = str(spec["feed"]).partition(".")
    kind = kinds.get(kind_name)
    if kind is None:
        raise where.error(SpecError, f"feed names no item kind '{kind_name}' (see stream.kinds)")
    if part and part not in kind.parts:
        raise where.error(SpecError, f"kind '{kind_name}' has no part '{part}'")
    if kind.keyed and "key" not in spec:
        raise where.error(SpecError, f"kind '{kind_name}' is keyed: the rule needs key:")
    taken = _RUNTIME_NAMES | set(spec.get("set") or ()) | ({kind.counter} if kind.counter else set())
    for name in spec.get("collect") or ():
        if name in taken:
            raise where.inside(spec["collect"], name).error(
                SpecError, f"collect: '{name}' is a name the item's events already read")
    return FrameRule(rule_id, spec, where, kind, kind.parts[part] if part else None)
