"""The stream runtime: one ``StreamMachine`` per upstream stream, owning the item lifecycle.

Every Responses⇄Chat bridge we studied breaks its streams somewhere: deltas for a message that was
never added, a message that reasoning swallowed, parallel tool calls sharing an index or closed in
random order, ids that change between the stream and the final object, missing sequence numbers.
Here those are not the mapping's job. The mapping (``engine.stream_spec``) says which frame fields
feed which item kind and what each event looks like; this machine alone decides:

* **opening**: an item opens on its first delta (or its first attributes, for a tool call's name);
  it gets the next index of its counter (dense, in opening order) and a fresh id;
* **ordering**: opening an item of another kind first closes every open item, in index order, so a
  reasoning item is closed before the message after it opens, and text before a tool call. A
  plain kind fed with a ``key`` (the upstream's item index) closes its live item when the key
  changes, so that each upstream item is one item here too. Items of a ``keyed`` kind (parallel
  tool calls, keyed by the chat ``index``) may be open together and close together, in index
  order. A call that reuses an index with a new id (Ollama sends ``index 0`` for every parallel
  call) is a new item. A delta for a keyed item that already closed is a protocol error, not a new
  item with half its arguments;
* **one at a time**, when the stream says so (``framing.one_open``, Anthropic's content blocks):
  an item that starts while another is open is *held*. Its events are built as it is fed but kept
  back, and they follow, in order, when the item before it closes; from then on it streams live.
  A chat upstream may interleave the deltas of parallel tool calls, so closing the first call
  when the second starts would lose arguments; holding the later ones loses nothing. On a
  failure the held items are dropped unseen, so a half-made call never looks whole;
* **parts**: within an item, content parts open on their first delta and close in order;
* **closing**: at the finish every open item closes; only the last gets the finish's item status
  (an incomplete item must be the last one). On failure likewise, the last one ``incomplete``;
* **numbering**: ``sequence_number`` on every event from 0, in emission order;
* **the final object**: the terminal response is built from the very items that were streamed, so
  ids, text and arguments agree by construction.

State per stream is the open items' accumulators and the finished items the final object must
hold; nothing grows with the number of frames except that text.
"""

from __future__ import annotations

from .context import Context
from .errors import ConversionError, StreamError, UpstreamError
from .stream_spec import EventRule, ItemKind, PartKind, StreamSpec
from .types import Event, Json


class _Part:
    __slots__ = ("kind", "scope", "chunks", "sent", "collected", "segment", "mark")

    def __init__(self, kind: PartKind, scope: dict[str, Json]) -> None:
        self.kind = kind
        self.scope = scope
        self.chunks: list[str] = []
        self.sent = 0  # characters streamed so far, so a final text can be sent as its remainder
        self.collected: dict[str, list[Json]] | None = None  # collect: name -> every value so far
        self.segment: Json = None  # the upstream part the text now comes from (a rule's segment:)
        self.mark = 0  # characters sent before that segment began


class _Item:
    __slots__ = ("kind", "scope", "index", "key", "identity", "chunks", "sent", "part", "is_open",
                 "collected", "held", "segment", "mark")

    def __init__(self, kind: ItemKind, scope: dict[str, Json], index: int, key: Json) -> None:
        self.kind = kind
        self.scope = scope
        self.index = index
        self.key = key
        self.identity: Json = None
        self.chunks: list[str] = []
        self.sent = 0
        self.part: _Part | None = None
        self.is_open = True
        self.collected: dict[str, list[Json]] | None = None
        self.held: list[Event] | None = None  # events kept back while an earlier item is open
        self.segment: Json = None
        self.mark = 0


class StreamMachine:
    """Feed it upstream frames (decoded JSON); it returns the client's events."""

    __slots__ = ("spec", "ctx", "state", "started", "finished", "saw_finish", "_out", "_sequence",
                 "_counters", "_open", "_keyed", "_done", "_envelope", "_held", "_joined")

    def __init__(self, spec: StreamSpec, ctx: Context) -> None:
        self.spec = spec
        self.ctx = ctx
        self.state: dict[str, Json] = {"status": "in_progress", "output": [], "usage": None,
                                       "incomplete_details": None, "error": None,
                                       "finish_reason": None}
        ctx.state = self.state
        for name, rule in spec.init:
            self.state[name] = rule(self.state, ctx)
        self.started = False
        self.finished = False
        self.saw_finish = False
        self._out: list[Event] = []
        self._sequence = 0
        self._counters = {name: 0 for name in spec.counters}
        self._open: list[_Item] = []                       # open items, in index order
        self._keyed: dict[str, dict[Json, _Item]] = {}     # kind -> key -> latest item
        self._done: list[tuple[int, Json]] = []            # finished items with their index
        self._envelope: dict[str, Json] | None = None
        self._held: list[_Item] = []  # one_open: items waiting for the live one, in opening order
        self._joined: set[str] = set()  # kinds with a joiner whose items have sent text

    # -- input ----------------------------------------------------------------------------------

    def feed(self, chunk: Json) -> list[Event]:
        """One decoded upstream frame in; the events it causes out (possibly none)."""
        if self.finished:
            return []
        self._out = out = []
        spec = self.spec
        ctx = self.ctx
        if chunk.__class__ is not dict:
            return self._failed(f"upstream frame is not a JSON object: {str(chunk)[:200]}")
        try:
            if spec.prepare is not None:
                chunk = spec.prepare(chunk, ctx)
                if chunk.__class__ is not dict:
                    return out  # nothing in this frame is for this stream
            self._capture(chunk)
            if spec.dispatch is not None:
                handler = spec.handlers.get(spec.dispatch(chunk, ctx), spec.default_handler)
            else:
                handler = spec.default_handler
            handler(chunk, ctx, self)
        except StreamError as error:
            return self._failed(error.message)
        except ConversionError as error:  # a frame the rules cannot convert (a count past 64 bits)
            return self._failed(f"the upstream sent a frame that cannot be converted: {error}")
        if not self.started:
            self._start()
        return out

    def end_of_input(self, done: bool = False) -> list[Event]:
        """The upstream's stream ended (``done``: with its end sentinel, e.g. ``[DONE]``).

        A stream that ended after its finish, or with the sentinel, completes. One that simply
        stopped, with neither, was cut short: it fails rather than pretending to be whole.
        """
        if self.finished:
            return []
        self._out = out = []
        if not self.saw_finish:
            if not done:
                return self._failed("the upstream stream ended before it finished "
                                    "(no finish_reason and no end marker)")
            self._finish(None)
        if not self.started:
            self._start()
        self._emit_all(self.spec.end, self._lifecycle_scope())
        self.finished = True
        return out

    def fail(self, message: str, *, code: str = "server_error", param: Json = None) -> list[Event]:
        """The upstream failed mid-stream: close what is open, then the failure events."""
        if self.finished:
            return []
        self._out = []
        return self._failed(message, code=code, param=param)

    # -- actions: called by the generated rule functions (``StreamSpec.handlers``) ------------------

    def feed_item(self, kind: ItemKind, part_kind: PartKind | None, delta: Json, final: Json,
                  key: Json, identity: Json, attributes: tuple[tuple[str, Json], ...],
                  collected: tuple[tuple[str, Json], ...] = (), segment: Json = None) -> None:
        """A ``feed`` rule found something: a delta, a whole final text, or an item attribute.

        ``collected`` values (a delta's logprobs) travel with the delta; without one they are lost.
        ``segment`` names the upstream's own part of the text (a Responses message's content part):
        a ``final`` text is the whole of its segment, which begins where the one before it ended.
        """
        named = False
        for _, value in attributes:
            if value is not None:
                named = True
                break
        if not delta and not final and not named:
            return
        if delta is not None and delta.__class__ is not str:
            delta = str(delta)
        if final is not None and final.__class__ is not str:
            final = str(final)
        opening = bool(delta) or bool(final) or named
        if kind.keyed:
            item = self._keyed_item(kind, key, identity, opening, bool(delta))
        else:
            item = self._plain_item(kind, opening, key)
        if item is None:
            return
        for name, value in attributes:
            if value is not None and item.scope.get(name) is None:
                item.scope[name] = value
        if not item.is_open:
            self._open_item(item)
        if segment is not None:
            holder = self._holder(item, part_kind)
            if holder is not None and segment != holder.segment:
                holder.segment, holder.mark = segment, holder.sent
        if final is not None:
            delta = self._unsent(item, part_kind, final)
        if not delta:
            return
        if part_kind is not None:
            self._part_delta(item, part_kind, delta, collected, segment)
        else:
            if kind.accumulate:
                item.chunks.append(delta)
            item.sent += len(delta)
            if kind.joiner is not None and item.sent == len(delta):
                # an item's first text: after an earlier item's, the joiner goes out first (only
                # out: it is no part of either item's text)
                if kind.name in self._joined:
                    delta = kind.joiner + delta
                self._joined.add(kind.name)
            item.scope["delta"] = delta
            self._delta_events(kind.delta, item, collected, kind.accumulate, item)

    def finish(self, reason: Json) -> None:
        """A ``finish`` rule: a reason finishes; a missing one only counts if none came before."""
        if reason is not None or not self.saw_finish:
            self._finish(reason)

    def set_usage(self, usage: Json) -> None:
        self.state["usage"] = usage

    def upstream_error(self, error: Json) -> None:
        """An ``error`` rule: the upstream reported an error in its stream."""
        message = str(error.get("message") or "the upstream reported an error") \
            if error.__class__ is dict else str(error)
        code = error.get("code") if error.__class__ is dict else None
        param = error.get("param") if error.__class__ is dict else None
        code_text = str(code) if code is not None else "server_error"
        if not self.started:
            # nothing has been written yet: the proxy can still answer with an HTTP error
            status = code if isinstance(code, int) and 400 <= code <= 599 else 502
            raise UpstreamError(message, status=status, error_code=code_text,
                                body={"error": error} if error.__class__ is dict else error)
        self._failed(message, code=code_text, param=param)

    @staticmethod
    def _holder(item: _Item, part_kind: PartKind | None) -> _Item | _Part | None:
        """What a text fed into ``item`` (its part of ``part_kind``) adds to; None: a new part."""
        if part_kind is None:
            return item
        return item.part if item.part is not None and item.part.kind is part_kind else None

    def _unsent(self, item: _Item, part_kind: PartKind | None, final: str) -> str:
        """The part of ``final`` (the whole text so far, of its segment) that no delta has carried yet.

        Some upstreams skip the deltas and send a text or a call's arguments whole in their
        ``.done`` event; this sends it on as one delta, and sends nothing twice.
        """
        holder = self._holder(item, part_kind)
        if holder is None:
            return final
        sent = holder.sent - holder.mark
        if item.kind.accumulate and "".join(holder.chunks)[holder.mark:] != final[:sent]:
            raise StreamError("the upstream's final text does not continue the deltas it sent")
        return final[sent:]

    def _finish(self, reason: Json) -> None:
        self.saw_finish = True
        state = self.state
        state["finish_reason"] = reason
        for name, rule in self.spec.outcome:
            state[name] = rule(state, self.ctx)
        if not self.started:
            self._start()
        self._close_all(last_status=state.get("item_status") or "completed")

    # -- items ------------------------------------------------------------------------------------

    def _plain_item(self, kind: ItemKind, opening: bool, key: Json) -> _Item | None:
        current = self._open[-1] if self._open else None
        if current is not None and current.kind is kind:
            if key is None or current.key is None or key == current.key:
                if current.key is None:
                    current.key = key
                return current
            if not opening:
                return None
            # a plain kind fed with a key (a Responses output_index): the upstream's next item of
            # the kind is a new item, as in a non-streamed answer, not more of the live one
            self._close_item(current, "completed")
        return self._new_item(kind, key) if opening else None

    def _keyed_item(self, kind: ItemKind, key: Json, identity: Json, opening: bool,
                    has_delta: bool) -> _Item | None:
        items = self._keyed.setdefault(kind.name, {})
        item = items.get(key)
        if item is not None:
            same = identity is None or item.identity is None or identity == item.identity
            if same and item.is_open:
                return item
            if same:
                if not has_delta:
                    return None  # a resent id or name with nothing new (NIM does this)
                raise StreamError(f"{kind.name} {key!r} continued after it was closed")
            if item.is_open:  # a new call reusing the key: the old one is complete
                self._close_item(item, "completed")
        if not opening:
            return None
        item = self._new_item(kind, key)
        item.identity = identity
        items[key] = item
        return item

    def _new_item(self, kind: ItemKind, key: Json) -> _Item:
        """A new item, not yet announced; items of other kinds close first."""
        if self._open and any(open_item.kind is not kind for open_item in self._open):
            self._close_all(last_status="completed")
        index = 0
        if kind.counter is not None:
            index = self._counters[kind.counter]
            self._counters[kind.counter] = index + 1
        scope: dict[str, Json] = {"id": self.ctx.new_id(kind.id_prefix) if kind.id_prefix else None,
                                  "status": "in_progress", "content": [], "text": None,
                                  "delta": None, "key": key}
        if kind.counter is not None:
            scope[kind.counter] = index
        item = _Item(kind, scope, index, key)
        item.is_open = False  # announced by _open_item once its attributes are set
        return item

    def _open_item(self, item: _Item) -> None:
        if not self.started:
            self._start()
        if self.spec.one_open and self._open:
            item.held = []  # another item is live: this one's events wait for it
            self._held.append(item)
        item.is_open = True
        self._open.append(item)
        self._emit_all(item.kind.open, item.scope, item)

    def _part_delta(self, item: _Item, kind: PartKind, delta: str,
                    collected: tuple[tuple[str, Json], ...], segment: Json = None) -> None:
        part = item.part
        if part is None or part.kind is not kind:
            if part is not None:
                self._close_part(item)
            scope = {"id": item.scope["id"], "content_index": len(item.scope["content"]),
                     "delta": None, "text": None}
            counter = item.kind.counter
            if counter is not None:
                scope[counter] = item.index
            part = item.part = _Part(kind, scope)
            part.segment = segment
            self._emit_all(kind.open, scope, item)
        if item.kind.accumulate:
            part.chunks.append(delta)
        part.sent += len(delta)
        part.scope["delta"] = delta
        self._delta_events(kind.delta, part, collected, item.kind.accumulate, item)

    def _delta_events(self, rules: tuple[EventRule, ...], holder: _Item | _Part,
                      collected: tuple[tuple[str, Json], ...], accumulate: bool,
                      item: _Item) -> None:
        """A delta's events; they see this frame's ``collect`` values, kept for the close."""
        for _, value in collected:
            if value:
                break
        else:  # nothing collected from this frame (the common case): the names stay unset
            self._emit_all(rules, holder.scope, item)
            return
        scope = holder.scope
        store = holder.collected
        if store is None:
            store = holder.collected = {}
        for name, value in collected:
            values = value if value.__class__ is list else [value] if value else []
            scope[name] = values
            if accumulate:
                store.setdefault(name, []).extend(values)
        self._emit_all(rules, scope, item)
        for name, _ in collected:
            scope[name] = None  # the next delta may come from a rule that collects nothing

    def _close_part(self, item: _Item) -> None:
        part = item.part
        item.part = None
        scope = part.scope
        scope["delta"] = None
        scope["text"] = "".join(part.chunks)
        if part.collected:
            scope.update(part.collected)
        self._emit_all(part.kind.close, scope, item)
        if part.kind.part is not None:
            item.scope["content"].append(part.kind.part(scope, self.ctx))

    def _close_item(self, item: _Item, status: str, failed: bool = False) -> None:
        if item.part is not None:
            self._close_part(item)
        item.is_open = False
        self._open.remove(item)
        scope = item.scope
        scope["delta"] = None
        scope["status"] = status
        scope["failed"] = failed  # the stream failed: a close rule may leave the item unsealed
        if item.kind.accumulate:
            scope["text"] = "".join(item.chunks)
        if item.collected:
            scope.update(item.collected)
        if item.kind.item is not None:
            finished = item.kind.item(scope, self.ctx)
            scope["item"] = finished
            self._done.append((item.index, finished))
        self._emit_all(item.kind.close, scope, item)
        if item.held is None:
            self._release_held()

    def _release_held(self) -> None:
        """The live item closed: the next held item's events go out, and it is live from now on
        (or, if it closed while held, the one after it)."""
        while self._held:
            item = self._held.pop(0)
            held, item.held = item.held, None
            for event in held:
                self._stamp(event)
            if item.is_open:
                return

    def _close_all(self, last_status: str, failed: bool = False) -> None:
        """Close every open item in index order; the last one gets ``last_status``."""
        items = sorted(self._open, key=lambda it: it.index)
        last = len(items) - 1
        for position, item in enumerate(items):
            if position == last:
                self._close_item(item, last_status, failed)
            else:
                self._close_item(item, "completed")

    # -- stream-level events --------------------------------------------------------------------

    def _capture(self, chunk: Json) -> None:
        state = self.state
        for name, rule in self.spec.capture:
            if state.get(name) is None:
                value = rule(chunk, self.ctx)
                if value is not None:
                    state[name] = value

    def _start(self) -> None:
        self.started = True
        if self.spec.envelope is not None:
            self._envelope = self.spec.envelope(self.state, self.ctx)
        self._emit_all(self.spec.start, self._lifecycle_scope())

    def _failed(self, message: str, *, code: str = "server_error", param: Json = None) -> list[Event]:
        out = self._out
        if not self.started:
            self._start()
        # held items were never shown: a failure does not show them now, half made
        for item in self._held:
            self._open.remove(item)
        self._held.clear()
        # as at a finish, only the last open item is cut short: an incomplete item is the last one
        self._close_all(last_status="incomplete", failed=True)
        state = self.state
        state["status"] = "failed"
        state["error"] = {"code": code, "message": message}
        state["error_param"] = param
        # an error frame is not a chunk: it goes out as it is, without the envelope
        self._emit_all(self.spec.fail, self._lifecycle_scope(), stamped=False)
        self.finished = True
        return out

    def _lifecycle_scope(self) -> dict[str, Json]:
        state = self.state
        state["output"] = [item for _, item in sorted(self._done, key=lambda pair: pair[0])]
        state["response"] = self.spec.response(state, self.ctx)
        return state

    # -- writing ----------------------------------------------------------------------------------

    def _emit_all(self, rules: tuple[EventRule, ...], scope: dict[str, Json],
                  item: _Item | None = None, stamped: bool = True) -> None:
        """Build the events ``rules`` make of ``scope``; an item that is held keeps them back."""
        ctx = self.ctx
        envelope = self._envelope if stamped else None
        held = item.held if item is not None else None
        for rule in rules:
            event = rule.build(scope, ctx)
            if event is None:
                continue
            if envelope is not None:
                event = {**envelope, **event}
            if held is not None:
                held.append(event)
            else:
                self._stamp(event)

    def _stamp(self, event: Event) -> None:
        """Number the event (``sequence_number``) as it goes out, in emission order."""
        sequence = self.spec.sequence
        if sequence is not None:
            event[sequence] = self._sequence
            self._sequence += 1
        self._out.append(event)

