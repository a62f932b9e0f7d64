"""Whole-stream invariants for the Responses and Chat Completions streams the suite emits.

A per-event schema cannot see ordering, identity or accumulation: a stream whose every event is valid
can still send a delta for an item that was never added, change an item's id between ``added`` and
``done``, or finish with text that is not the sum of its deltas. Those are the bugs peers ship
(PEERS.md §C), so every stream test runs these checks on every stream it produces.

How it works:

- The checkers walk the decoded events once, keeping a small model of what is open (items, content
  parts, tool calls) and what each delta added up to. Handlers are looked up by event ``type``.
- They do not stop at the first problem. Every broken rule becomes a ``Finding`` naming the event
  index, its type and the rule, and all findings are raised together as one ``StreamInvariantError``
  (an ``AssertionError``), so a test failure shows the root cause next to its knock-on effects.
- Rule tags are stable and match the numbered lists below (``R1``..``R11`` for Responses,
  ``C1``..``C7`` for chat); tests and reviewers refer to them.
- ``parse_sse_events`` is a deliberately tiny SSE reader, independent of ``engine/sse.py``, so the
  checker never shares a bug with the code it judges.

Responses rules (``check_responses_stream``), from PEERS.md §B and the Open Responses spec:

    R1  the first event is response.created (response.in_progress may follow)
    R2  sequence_number starts at 0 and rises by exactly 1
    R3  every event is valid against its own schema ($defs entry picked by `type`)
    R4  output_index is dense in output_item.added order; no event refers to an index that was
        never added or is already done
    R5  every item added is done exactly once; every content/summary part added is done before
        its item; deltas only between their part's added and done; part indexes dense per item
    R6  *.done text, content_part.done part text and output_item.done content equal the sum of the
        deltas; function_call_arguments.done (and the done item) carry the summed arguments; the
        name in function_call_arguments.done is the item's name; output_text logprobs (token and
        logprob) in the done event, the done part and the done item are those of the deltas
    R7  an item keeps its id (added, every item_id, done, final output); one response.id throughout
    R8  exactly one terminal event, nothing after it (bar a trailing "[DONE]")
    R9  the terminal type matches response.status; incomplete carries incomplete_details.reason;
        failed carries error.code/message and directly follows an `error` event
    R10 the final response's output is exactly the output_item.done items in output_index order
    R11 an item with status incomplete is the last item, in an incomplete or failed response

Chat rules (``check_chat_stream``):

    C1  every chunk is a valid chat.chunk; an error frame is a valid `error` body
    C2  one id, one created and one model across all chunks
    C3  the first chunk's first choice carries role "assistant"; no other delta carries a role
    C4  tool-call indexes appear in order 0,1,2…; the first delta of each has id, type "function"
        and function.name; later deltas carry only function.arguments
    C5  exactly one finish_reason per choice (unless the stream ends in an error frame), after all
        of that choice's deltas; "tool_calls" when tool calls were streamed (bar length and
        content_filter)
    C6  usage: when expected, exactly one usage chunk with `choices: []` after the finish; when not
        expected, none
    C7  "[DONE]" comes last, once; after an error frame only "[DONE]" may follow
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .schemas import assert_valid_event, schema_errors

Json = Any
Event = dict[str, Json]

DONE = "[DONE]"
LIFECYCLE_TYPES = frozenset({"response.created", "response.queued", "response.in_progress"})
TERMINAL_STATUS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: where (event index and type), which rule, and what is wrong."""

    rule: str
    index: int | None
    event_type: str | None
    message: str

    def __str__(self) -> str:
        where = "end of stream" if self.index is None else f"#{self.index} {self.event_type}"
        return f"{where} [{self.rule}]: {self.message}"


class StreamInvariantError(AssertionError):
    """A stream broke one or more invariants; ``findings`` lists every one, in stream order."""

    def __init__(self, kind: str, findings: list[Finding]) -> None:
        self.findings = findings
        lines = [f"{kind} stream breaks {len(findings)} invariant(s):", *(f"  {f}" for f in findings)]
        super().__init__("\n".join(lines))

    @property
    def rules(self) -> set[str]:
        """The rule tags that fired, e.g. ``{"R4", "R8"}``."""
        return {f.rule for f in self.findings}


# ------------------------------------------------------------------------------------------------
# SSE framing


def parse_sse_events(body: bytes | str) -> list[Json]:
    """Decode an SSE body into its data payloads, in order; ``"[DONE]"`` is kept as the string.

    Frames are separated by blank lines; ``data:`` lines are joined with newlines; comments,
    ``id:`` and ``retry:`` are ignored. When a frame has an ``event:`` line it must equal the
    payload's ``type`` (Open Responses: "The `event` field MUST match the `type`").

    >>> parse_sse_events(b'event: error\\ndata: {"type": "error"}\\n\\ndata: [DONE]\\n\\n')
    [{'type': 'error'}, '[DONE]']
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.strip() and not text.endswith("\n\n"):
        # openai-python only dispatches an event on the blank line after it: a last frame without
        # one is silently dropped by the SDK.
        raise AssertionError(f"SSE body does not end with a blank line: ...{text[-60:]!r}")
    payloads: list[Json] = []
    for number, frame in enumerate(text.split("\n\n")):
        event_name, data_lines = _read_frame(frame)
        if not data_lines:
            if event_name is not None:
                # openai-python dispatches such a frame and fails on json.loads("")
                raise AssertionError(f"SSE frame {number}: `event: {event_name}` without a data line")
            continue
        data = "\n".join(data_lines)
        if data == DONE:
            payloads.append(DONE)
            continue
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise AssertionError(f"SSE frame {number}: data is not JSON ({exc}): {data[:80]!r}") from None
        data_type = payload.get("type") if isinstance(payload, dict) else None
        if event_name is not None and event_name != data_type:
            raise AssertionError(f"SSE frame {number}: `event: {event_name}` but data type is {data_type!r}")
        payloads.append(payload)
    return payloads


def _read_frame(frame: str) -> tuple[str | None, list[str]]:
    event_name: str | None = None
    data_lines: list[str] = []
    for line in frame.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event_name = value
        elif name == "data":
            data_lines.append(value)
    return event_name, data_lines


# ------------------------------------------------------------------------------------------------
# Responses streams


def check_responses_stream(
    events: list[Json],
    *,
    done_sentinel: bool | None = None,
    allow_completed_incomplete: bool = False,
    require_error_event: bool = True,
    allow_open_parts_in_incomplete_item: bool = False,
) -> dict[str, Json]:
    """Assert every Responses stream invariant (R1-R11) and return a summary of the stream.

    ``done_sentinel``: None accepts an optional trailing "[DONE]", True requires it, False forbids it.
    ``allow_completed_incomplete``: accept ``response.completed`` with status "incomplete" (the
    LiteLLM/vLLM compatibility shape).
    ``require_error_event``: R9's "response.failed directly follows an `error` event"; OpenAI-shaped
    upstream traffic may omit it, mapper's own output must not.
    ``allow_open_parts_in_incomplete_item``: a truncated (status "incomplete") item may be done while
    its content parts are still open, as some upstreams do on max_output_tokens.

    Returns ``{"terminal", "status", "items", "text", "response"}``.
    """
    check = _ResponsesCheck(
        allow_completed_incomplete=allow_completed_incomplete,
        require_error_event=require_error_event,
        allow_open_parts_in_incomplete_item=allow_open_parts_in_incomplete_item,
    )
    return check.run(events, done_sentinel)


@dataclass
class _Part:
    kind: str
    opened_at: int
    text: str = ""
    text_done: str | None = None
    closed: bool = False
    logprobs: list[tuple[Json, Json]] = field(default_factory=list)  # (token, logprob) of the deltas


@dataclass
class _Item:
    output_index: int
    id: Json
    type: Json
    name: Json
    call_id: Json
    opened_at: int
    parts: dict[str, dict[int, _Part]] = field(default_factory=lambda: {"content": {}, "summary": {}})
    arguments: str = ""
    argument_deltas: int = 0
    arguments_done: str | None = None
    done_item: dict[str, Json] | None = None


# event type -> (part slot, part kind, "delta" | "done")
_TEXT_EVENTS = {
    "response.output_text.delta": ("content", "output_text", "delta"),
    "response.output_text.done": ("content", "output_text", "done"),
    "response.refusal.delta": ("content", "refusal", "delta"),
    "response.refusal.done": ("content", "refusal", "done"),
    "response.reasoning_text.delta": ("content", "reasoning_text", "delta"),
    "response.reasoning_text.done": ("content", "reasoning_text", "done"),
    "response.reasoning_summary_text.delta": ("summary", "summary_text", "delta"),
    "response.reasoning_summary_text.done": ("summary", "summary_text", "done"),
}
# event type -> (part slot, "added" | "done")
_PART_EVENTS = {
    "response.content_part.added": ("content", "added"),
    "response.content_part.done": ("content", "done"),
    "response.reasoning_summary_part.added": ("summary", "added"),
    "response.reasoning_summary_part.done": ("summary", "done"),
}
_SLOT_INDEX = {"content": "content_index", "summary": "summary_index"}
# the item type a part kind lives in (openai-python asserts this for output_text)
_PART_ITEM_TYPE = {
    "output_text": "message",
    "refusal": "message",
    "reasoning_text": "reasoning",
    "summary_text": "reasoning",
}


def _token_logprobs(holder: dict[str, Json]) -> list[tuple[Json, Json]]:
    entries = holder.get("logprobs")
    return [(entry.get("token"), entry.get("logprob")) for entry in entries
            if isinstance(entry, dict)] if isinstance(entries, list) else []


def _text_field(kind: str) -> str:
    # refusal parts and refusal.done carry `refusal`, every other text kind carries `text`
    return "refusal" if kind == "refusal" else "text"


class _ResponsesCheck:
    def __init__(
        self,
        *,
        allow_completed_incomplete: bool,
        require_error_event: bool,
        allow_open_parts_in_incomplete_item: bool,
    ) -> None:
        self.allow_completed_incomplete = allow_completed_incomplete
        self.require_error_event = require_error_event
        self.allow_open_parts = allow_open_parts_in_incomplete_item
        self.findings: list[Finding] = []
        self.items: dict[int, _Item] = {}
        self.next_index = 0
        self.response_id: Json = None
        self.response_at: int | None = None
        self.terminal: tuple[int, Event] | None = None
        self.previous_type: str | None = None
        self.index = 0
        self.type: str | None = None

    # -- driver -----------------------------------------------------------------------------

    def run(self, events: list[Json], done_sentinel: bool | None) -> dict[str, Json]:
        events = self._strip_done(list(events), done_sentinel)
        expected_sequence = 0
        for index, event in enumerate(events):
            self.index, self.type = index, event.get("type") if isinstance(event, dict) else None
            if not isinstance(event, dict):
                self.fail("R3", f"event is {event!r}, not a JSON object")
                continue
            if self.terminal is not None:
                self.fail("R8", f"event after the terminal event #{self.terminal[0]}")
            expected_sequence = self._check_sequence(event, expected_sequence)
            self._check_schema(event)
            if index == 0 and self.type != "response.created":
                self.fail("R1", "the first event must be response.created")
            self._dispatch(event)
            self.previous_type = self.type
        self._check_end(events)
        if self.findings:
            raise StreamInvariantError("Responses", self.findings)
        return self._summary()

    def fail(self, rule: str, message: str, *, at_end: bool = False) -> None:
        index, event_type = (None, None) if at_end else (self.index, self.type)
        self.findings.append(Finding(rule, index, event_type, message))

    def _strip_done(self, events: list[Json], done_sentinel: bool | None) -> list[Json]:
        has_done = bool(events) and events[-1] == DONE
        if has_done:
            events.pop()
            if done_sentinel is False:
                self.fail("R8", 'the stream ends with "[DONE]", which this caller forbids', at_end=True)
        elif done_sentinel is True:
            self.fail("R8", 'the stream does not end with "[DONE]"', at_end=True)
        for index, event in enumerate(events):
            if event == DONE:
                self.findings.append(Finding("R8", index, DONE, '"[DONE]" before the end of the stream'))
        return [event for event in events if event != DONE]

    def _check_sequence(self, event: Event, expected: int) -> int:
        number = event.get("sequence_number")
        if not isinstance(number, int) or isinstance(number, bool):
            self.fail("R2", f"sequence_number is {number!r}, expected {expected}")
            return expected + 1
        if number != expected:
            self.fail("R2", f"sequence_number is {number}, expected {expected}")
        return number + 1

    def _check_schema(self, event: Event) -> None:
        try:
            assert_valid_event(event)
        except AssertionError as exc:
            lines = str(exc).splitlines()
            errors = [line.strip() for line in lines[1:]] or lines
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            self.fail("R3", "schema: " + "; ".join(errors[:3]) + more)

    def _dispatch(self, event: Event) -> None:
        event_type = self.type if isinstance(self.type, str) else None
        if event_type in _TEXT_EVENTS:
            self.on_text(event, *_TEXT_EVENTS[event_type])
        elif event_type in _PART_EVENTS:
            self.on_part(event, *_PART_EVENTS[event_type])
        elif event_type in LIFECYCLE_TYPES or event_type in TERMINAL_STATUS:
            self.on_lifecycle(event)
        else:
            handler = self._HANDLERS.get(event_type, _ResponsesCheck.on_other)
            handler(self, event)

    # -- lifecycle --------------------------------------------------------------------------

    def on_lifecycle(self, event: Event) -> None:
        response = event.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        if self.type == "response.created" and self.index != 0:
            self.fail("R1", "response.created again after the first event")
        if self.response_at is None:
            self.response_id, self.response_at = response_id, self.index
        elif response_id != self.response_id:
            self.fail("R7", f"response.id is {response_id!r}, #{self.response_at} had {self.response_id!r}")
        if self.type not in TERMINAL_STATUS:
            return
        if self.terminal is None:
            self.terminal = (self.index, event)
            self._check_terminal(event, response if isinstance(response, dict) else {})
        else:
            self.fail("R8", f"a second terminal event (the first was #{self.terminal[0]})")

    def _check_terminal(self, event: Event, response: dict[str, Json]) -> None:
        status = response.get("status")
        expected = TERMINAL_STATUS[self.type]
        allowed = {expected}
        if self.allow_completed_incomplete and expected == "completed":
            allowed.add("incomplete")
        if status not in allowed:
            self.fail("R9", f"response.status is {status!r}, a {self.type} event needs {expected!r}")
        if status == "incomplete" or self.type == "response.incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason")
            if not reason:
                self.fail("R9", "an incomplete response needs incomplete_details.reason")
        if self.type == "response.failed":
            error = response.get("error") or {}
            if not error.get("code") or not error.get("message"):
                self.fail("R9", f"response.failed needs error.code and error.message, got {error!r}")
            if self.require_error_event and self.previous_type != "error":
                self.fail("R9", f"response.failed must directly follow an `error` event, not {self.previous_type!r}")

    # -- items ------------------------------------------------------------------------------

    def on_item_added(self, event: Event) -> None:
        output_index = _as_index(event.get("output_index"))
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        if output_index is None:
            self.fail("R4", f"output_index is {event.get('output_index')!r}, not an index")
            return
        if output_index in self.items:
            self.fail("R4", f"output_index {output_index} was already added at #{self.items[output_index].opened_at}")
            return
        if output_index != self.next_index:
            self.fail("R4", f"output_index {output_index} added, but the next index is {self.next_index}")
        if not item.get("id"):
            self.fail("R7", f"the item added at output_index {output_index} has no id")
        self.items[output_index] = _Item(
            output_index=output_index,
            id=item.get("id"),
            type=item.get("type"),
            name=item.get("name"),
            call_id=item.get("call_id"),
            opened_at=self.index,
        )
        self.next_index = max(self.next_index, output_index + 1)

    def on_item_done(self, event: Event) -> None:
        output_index = event.get("output_index")
        done = event.get("item") if isinstance(event.get("item"), dict) else {}
        state = self.items.get(_as_index(output_index))
        if state is None:
            self.fail("R4", f"output_item.done for output_index {output_index}, which was never added")
            return
        if state.done_item is not None:
            self.fail("R5", f"a second output_item.done for output_index {output_index}")
            return
        state.done_item = done
        for key in ("id", "type", "name", "call_id"):
            if getattr(state, key) != done.get(key):
                self.fail("R7", f"item {key} is {done.get(key)!r} at done, {getattr(state, key)!r} when added")
        for slot in ("content", "summary"):
            self._check_done_parts(state, slot, done)
        if state.type == "function_call":
            self._check_done_arguments(state, done)

    def _check_done_parts(self, state: _Item, slot: str, done: dict[str, Json]) -> None:
        parts = state.parts[slot]
        final = done.get(slot) if isinstance(done.get(slot), list) else []
        truncated = done.get("status") == "incomplete" and self.allow_open_parts
        for number, part in sorted(parts.items()):
            if not part.closed and not truncated:
                index_name = _SLOT_INDEX[slot]
                where = f"{slot} part {index_name}={number} (added #{part.opened_at})"
                self.fail("R5", f"output_item.done while {where} is open")
            entry = final[number] if number < len(final) and isinstance(final[number], dict) else None
            if entry is None:
                self.fail("R6", f"the done item has no {slot}[{number}], but that part was streamed")
                continue
            self._compare(f"item {slot}[{number}]", part, entry)
        for number in range(len(parts), len(final)):
            self.fail("R6", f"the done item carries {slot}[{number}], which was never streamed")

    def _check_done_arguments(self, state: _Item, done: dict[str, Json]) -> None:
        streamed = state.arguments if state.argument_deltas else state.arguments_done
        if streamed is None:
            if done.get("arguments"):
                self.fail("R6", "the done function_call carries arguments that were never streamed")
            return
        if done.get("arguments") != streamed:
            self.fail("R6", f"item arguments {done.get('arguments')!r} != streamed {streamed!r}")

    # -- parts and deltas -------------------------------------------------------------------

    def on_part(self, event: Event, slot: str, phase: str) -> None:
        state = self._open_item(event)
        if state is None:
            return
        index_name = _SLOT_INDEX[slot]
        number = _as_index(event.get(index_name))
        parts = state.parts[slot]
        part = event.get("part") if isinstance(event.get("part"), dict) else {}
        kind = part.get("type")
        if number is None:
            self.fail("R5", f"{index_name} is {event.get(index_name)!r}, not an index")
            return
        if phase == "added":
            if number in parts:
                self.fail("R5", f"{index_name} {number} was already added at #{parts[number].opened_at}")
                return
            if number != len(parts):
                self.fail("R5", f"{index_name} {number} added, but the next one is {len(parts)}")
            self._check_part_home(state, kind)
            parts[number] = _Part(kind=kind, opened_at=self.index)
            return
        current = parts.get(number)
        if current is None:
            self.fail("R5", f"{self.type} for {index_name} {number}, which was never added")
            return
        if current.closed:
            self.fail("R5", f"a second {self.type} for {index_name} {number}")
            return
        current.closed = True
        if kind != current.kind:
            self.fail("R5", f"part type is {kind!r}, it was added as {current.kind!r}")
        self._compare("part", current, part)

    def on_text(self, event: Event, slot: str, kind: str, phase: str) -> None:
        state = self._open_item(event)
        if state is None:
            return
        index_name = _SLOT_INDEX[slot]
        number = event.get(index_name)
        part = state.parts[slot].get(_as_index(number))
        if part is None:
            self.fail("R5", f"{index_name} {number} of output_index {state.output_index} was never added")
            return
        if part.closed:
            self.fail("R5", f"{index_name} {number} of output_index {state.output_index} is already done")
            return
        if part.kind != kind:
            self.fail("R5", f"a {kind} event for a part added as {part.kind!r}")
        if part.text_done is not None:
            self.fail("R5", f"{self.type} after this part's text was already done")
            return
        if phase == "delta":
            part.text += _text(event.get("delta"))
            part.logprobs += _token_logprobs(event)
            return
        final = event.get(_text_field(kind))
        part.text_done = final if isinstance(final, str) else ""
        if final != part.text:
            self.fail("R6", f"{_text_field(kind)} {_clip(final)} != the deltas' sum {_clip(part.text)}")
        self._compare_logprobs(self.type, part, event)

    def on_arguments_delta(self, event: Event) -> None:
        state = self._function_call(event)
        if state is None:
            return
        if state.arguments_done is not None:
            self.fail("R5", "an arguments delta after function_call_arguments.done")
            return
        state.argument_deltas += 1
        state.arguments += _text(event.get("delta"))

    def on_arguments_done(self, event: Event) -> None:
        state = self._function_call(event)
        if state is None:
            return
        if state.arguments_done is not None:
            self.fail("R5", "a second function_call_arguments.done")
            return
        arguments = event.get("arguments")
        state.arguments_done = arguments if isinstance(arguments, str) else ""
        if arguments != state.arguments:
            self.fail("R6", f"arguments {_clip(arguments)} != the deltas' sum {_clip(state.arguments)}")
        if event.get("name") != state.name:
            self.fail("R6", f"name is {event.get('name')!r}, the item's name is {state.name!r}")

    def on_error(self, event: Event) -> None:
        """An `error` event carries no output_index; R9 checks what follows it."""

    def on_other(self, event: Event) -> None:
        if "output_index" in event:
            self._open_item(event)

    _HANDLERS: dict[str | None, Callable[[_ResponsesCheck, Event], None]] = {
        "response.output_item.added": on_item_added,
        "response.output_item.done": on_item_done,
        "response.function_call_arguments.delta": on_arguments_delta,
        "response.function_call_arguments.done": on_arguments_done,
        "error": on_error,
    }

    def _open_item(self, event: Event) -> _Item | None:
        """The open item an event refers to by output_index, after checking R4 and its item_id."""
        output_index = event.get("output_index")
        state = self.items.get(_as_index(output_index))
        if state is None:
            self.fail("R4", f"output_index {output_index!r} was never added")
            return None
        if state.done_item is not None:
            self.fail("R4", f"output_index {output_index} is already done")
            return None
        if "item_id" in event and event["item_id"] != state.id:
            self.fail("R7", f"item_id {event['item_id']!r} != {state.id!r}, the item at output_index {output_index}")
        return state

    def _function_call(self, event: Event) -> _Item | None:
        state = self._open_item(event)
        if state is not None and state.type != "function_call":
            self.fail("R5", f"an arguments event for a {state.type!r} item")
            return None
        return state

    def _check_part_home(self, state: _Item, kind: Json) -> None:
        home = _PART_ITEM_TYPE.get(kind) if isinstance(kind, str) else None
        if home is not None and home != state.type:
            self.fail("R5", f"a {kind!r} part in a {state.type!r} item")

    def _compare(self, what: str, part: _Part, entry: dict[str, Json]) -> None:
        if entry.get("type") != part.kind:
            self.fail("R6", f"{what} type is {entry.get('type')!r}, streamed as {part.kind!r}")
            return
        final = entry.get(_text_field(part.kind))
        if final != part.text:
            self.fail("R6", f"{what} {_text_field(part.kind)} {_clip(final)} != the deltas' sum {_clip(part.text)}")
        self._compare_logprobs(what, part, entry)

    def _compare_logprobs(self, what: str, part: _Part, holder: dict[str, Json]) -> None:
        if "logprobs" in holder and _token_logprobs(holder) != part.logprobs:
            self.fail("R6", f"{what} logprobs {str(_token_logprobs(holder))[:200]} != the deltas' "
                            f"{str(part.logprobs)[:200]}")

    # -- end of stream ----------------------------------------------------------------------

    def _check_end(self, events: list[Json]) -> None:
        if not events:
            self.fail("R1", "the stream is empty", at_end=True)
            return
        if self.terminal is None:
            last = events[-1].get("type") if isinstance(events[-1], dict) else events[-1]
            self.fail("R8", f"no terminal event; the stream stops after #{len(events) - 1} {last}", at_end=True)
        for state in self.items.values():
            if state.done_item is None:
                added = f"output_index {state.output_index} ({state.id}) was added at #{state.opened_at}"
                self.fail("R5", f"{added} but never done", at_end=True)
        if self.terminal is not None:
            response = self.terminal[1].get("response")
            self._check_final_output(response if isinstance(response, dict) else {})
            self._check_incomplete_items(response if isinstance(response, dict) else {})

    def _check_final_output(self, response: dict[str, Json]) -> None:
        output = response.get("output")
        if not isinstance(output, list):
            self.fail("R10", f"the final response has no output list ({output!r})", at_end=True)
            return
        streamed = [state for _, state in sorted(self.items.items()) if state.done_item is not None]
        by_id = {state.id: state for state in streamed}
        for position in range(max(len(output), len(streamed))):
            final = output[position] if position < len(output) else None
            state = streamed[position] if position < len(streamed) else None
            final_id = final.get("id") if isinstance(final, dict) else None
            if state is None:
                self.fail("R10", f"final output[{position}] ({final_id}) was never streamed", at_end=True)
            elif final is None:
                streamed_item = f"streamed item {state.id} (output_index {state.output_index})"
                self.fail("R10", f"{streamed_item} is missing from the final output", at_end=True)
            elif final_id != state.id:
                seen = "" if final_id in by_id else ", an id never streamed"
                message = f"final output[{position}] has id {final_id!r}, the streamed item there is {state.id!r}"
                self.fail("R7", message + seen, at_end=True)
            elif final != state.done_item:
                keys = sorted(k for k in set(final) | set(state.done_item) if final.get(k) != state.done_item.get(k))
                message = f"final output[{position}] differs from its output_item.done item in {keys}"
                self.fail("R10", message, at_end=True)

    def _check_incomplete_items(self, response: dict[str, Json]) -> None:
        for output_index, state in sorted(self.items.items()):
            if (state.done_item or {}).get("status") != "incomplete":
                continue
            if output_index != max(self.items):
                message = f"incomplete item {state.id} at output_index {output_index} is not the last item"
                self.fail("R11", message, at_end=True)
            if response.get("status") not in ("incomplete", "failed"):
                self.fail("R11", f"incomplete item {state.id} in a {response.get('status')!r} response", at_end=True)

    def _summary(self) -> dict[str, Json]:
        assert self.terminal is not None
        response = self.terminal[1]["response"]
        text = "".join(
            part.text
            for _, state in sorted(self.items.items())
            for _, part in sorted(state.parts["content"].items())
            if part.kind == "output_text"
        )
        return {
            "terminal": self.terminal[1]["type"],
            "status": response.get("status"),
            "items": [item.get("type") for item in response.get("output") or []],
            "text": text,
            "response": response,
        }


# ------------------------------------------------------------------------------------------------
# Chat streams


def check_chat_stream(chunks: list[Json], *, expect_usage: bool | None = None) -> dict[str, Json]:
    """Assert every chat stream invariant (C1-C7) and return a summary of the stream.

    ``expect_usage``: True requires one trailing usage chunk (``stream_options.include_usage``),
    False forbids usage anywhere, None accepts at most one, well placed.

    Returns ``{"content", "reasoning", "tool_calls", "finish_reason", "usage", "error"}`` for
    choice 0, ``tool_calls`` as ``[{"id", "name", "arguments"}]``.
    """
    return _ChatCheck(expect_usage).run(list(chunks))


@dataclass
class _Choice:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[Json, dict[str, Json]] = field(default_factory=dict)
    finish_reason: Json = None
    finished_at: int | None = None


# delta fields that carry generated output (reasoning_content: DeepSeek; reasoning: vLLM)
_OUTPUT_FIELDS = ("content", "refusal", "tool_calls", "reasoning_content", "reasoning")


class _ChatCheck:
    def __init__(self, expect_usage: bool | None) -> None:
        self.expect_usage = expect_usage
        self.findings: list[Finding] = []
        self.choices: dict[int, _Choice] = {}
        self.first: dict[str, Json] | None = None
        self.error_at: int | None = None
        self.error: Json = None
        self.usage_at: list[int] = []
        self.usage: Json = None
        self.index = 0
        self.label: str | None = None

    def run(self, chunks: list[Json]) -> dict[str, Json]:
        done_at = [index for index, chunk in enumerate(chunks) if chunk == DONE]
        for index, chunk in enumerate(chunks):
            self.index = index
            if chunk == DONE:
                self.label = DONE
                if index != len(chunks) - 1:
                    self.fail("C7", '"[DONE]" is not the last element')
                continue
            self.label = "error frame" if _is_error_frame(chunk) else "chunk"
            if self.error_at is not None:
                self.fail("C7", f"only \"[DONE]\" may follow the error frame #{self.error_at}")
            if self.label == "error frame":
                self.on_error_frame(chunk)
            else:
                self.on_chunk(chunk)
        self._check_end(chunks, done_at)
        if self.findings:
            raise StreamInvariantError("chat", self.findings)
        return self._summary()

    def fail(self, rule: str, message: str, *, at_end: bool = False) -> None:
        index, label = (None, None) if at_end else (self.index, self.label)
        self.findings.append(Finding(rule, index, label, message))

    def on_error_frame(self, frame: dict[str, Json]) -> None:
        for error in schema_errors("error", frame)[:3]:
            self.fail("C1", f"error frame schema: {error}")
        self.error_at, self.error = self.index, frame.get("error")

    def on_chunk(self, chunk: Json) -> None:
        if not isinstance(chunk, dict):
            self.fail("C1", f"chunk is {chunk!r}, not a JSON object")
            return
        errors = schema_errors("chat.chunk", chunk)
        if errors:
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            self.fail("C1", "schema: " + "; ".join(errors[:3]) + more)
        self._check_identity(chunk)
        if self.usage_at:
            self.fail("C6", f"a chunk after the usage chunk #{self.usage_at[0]}")
        choices = chunk.get("choices") if isinstance(chunk.get("choices"), list) else []
        if chunk.get("usage") is not None:
            self._on_usage(chunk, choices)
        for position, choice in enumerate(choices):
            if isinstance(choice, dict):
                self._on_choice(choice, first=self.index == 0 and position == 0)
        if self.index == 0 and not choices:
            self.fail("C3", "the first chunk has no choice to carry role \"assistant\"")

    def _check_identity(self, chunk: dict[str, Json]) -> None:
        if self.first is None:
            self.first = chunk
            return
        for key in ("id", "created", "model"):
            if chunk.get(key) != self.first.get(key):
                self.fail("C2", f"{key} is {chunk.get(key)!r}, the first chunk had {self.first.get(key)!r}")

    def _on_usage(self, chunk: dict[str, Json], choices: list[Json]) -> None:
        self.usage_at.append(self.index)
        self.usage = chunk["usage"]
        if self.expect_usage is False:
            self.fail("C6", "usage was not requested but this chunk carries it")
        if choices:
            self.fail("C6", "the usage chunk must have `choices: []`")

    def _on_choice(self, choice: dict[str, Json], *, first: bool) -> None:
        # a non-integer index is a C1 schema finding; count it as choice 0 here
        state = self.choices.setdefault(_as_index(choice.get("index")) or 0, _Choice())
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        role = delta.get("role")
        if first and role != "assistant":
            self.fail("C3", f"the first delta's role is {role!r}, expected 'assistant'")
        elif not first and role is not None:
            self.fail("C3", f"role {role!r} repeated after the first chunk")
        carries_output = any(delta.get(key) not in (None, "", []) for key in _OUTPUT_FIELDS)
        if state.finished_at is not None and carries_output:
            self.fail("C5", f"a delta after finish_reason {state.finish_reason!r} at #{state.finished_at}")
        if isinstance(delta.get("content"), str):
            state.content.append(delta["content"])
        for key in ("reasoning_content", "reasoning"):
            if isinstance(delta.get(key), str):
                state.reasoning.append(delta[key])
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                self._on_tool_call(state, call)
        if choice.get("finish_reason") is not None:
            self._on_finish(state, choice["finish_reason"])

    def _on_tool_call(self, state: _Choice, call: dict[str, Json]) -> None:
        number = _as_index(call.get("index"))
        if number is None:
            self.fail("C4", f"tool call index is {call.get('index')!r}, not an index")
            return
        function = call.get("function") if isinstance(call.get("function"), dict) else None
        if number not in state.tool_calls:
            self._open_tool_call(state, number, call, function or {})
            return
        resent = [key for key in ("id", "type") if call.get(key) is not None]
        resent += ["function.name"] if (function or {}).get("name") is not None else []
        if resent:
            self.fail("C4", f"a later delta of tool call {number} resends {', '.join(resent)}")
        if function is None:
            # openai-python asserts `tool_call_delta.function is not None`
            self.fail("C4", f"a later delta of tool call {number} has no function object")
            return
        state.tool_calls[number]["arguments"] += _text(function.get("arguments"))

    def _open_tool_call(self, state: _Choice, number: Json, call: dict[str, Json], function: dict[str, Json]) -> None:
        expected = len(state.tool_calls)
        if number != expected:
            self.fail("C4", f"tool call index {number!r} arrives before index {expected}")
        # chat sends the tool-call id, type and name only on the first delta of each call
        if not call.get("id") or call.get("type") != "function" or not function.get("name"):
            needs = "needs id, type 'function' and function.name"
            self.fail("C4", f"the first delta of tool call {number} {needs}: {call}")
        state.tool_calls[number] = {
            "id": call.get("id"),
            "name": function.get("name"),
            "arguments": _text(function.get("arguments")),
        }

    def _on_finish(self, state: _Choice, reason: Json) -> None:
        if state.finished_at is not None:
            self.fail("C5", f"a second finish_reason (the first was {state.finish_reason!r} at #{state.finished_at})")
            return
        state.finish_reason, state.finished_at = reason, self.index
        if state.tool_calls and reason not in ("tool_calls", "length", "content_filter"):
            self.fail("C5", f"finish_reason is {reason!r} after streamed tool calls, expected 'tool_calls'")

    def _check_end(self, chunks: list[Json], done_at: list[int]) -> None:
        if not [chunk for chunk in chunks if chunk != DONE]:
            self.fail("C1", "the stream has no chunks", at_end=True)
        if len(done_at) > 1:
            self.fail("C7", f'"[DONE]" appears {len(done_at)} times', at_end=True)
        if not done_at and self.error_at is None:
            self.fail("C7", 'the stream does not end with "[DONE]"', at_end=True)
        if self.error_at is None:
            for number, state in sorted(self.choices.items()):
                if state.finished_at is None:
                    self.fail("C5", f"choice {number} never got a finish_reason", at_end=True)
            if not self.choices and self.first is not None:
                self.fail("C5", "no chunk carried a choice, so nothing finished", at_end=True)
        self._check_usage_end()

    def _check_usage_end(self) -> None:
        if self.expect_usage and self.error_at is None and len(self.usage_at) != 1:
            self.fail("C6", f"expected exactly one usage chunk, got {len(self.usage_at)}", at_end=True)
        elif len(self.usage_at) > 1:
            self.fail("C6", f"{len(self.usage_at)} usage chunks", at_end=True)
        finishes = [state.finished_at for state in self.choices.values() if state.finished_at is not None]
        if self.usage_at and finishes and self.usage_at[0] < max(finishes):
            message = f"the usage chunk #{self.usage_at[0]} comes before the finish chunk #{max(finishes)}"
            self.fail("C6", message, at_end=True)

    def _summary(self) -> dict[str, Json]:
        state = self.choices.get(0, _Choice())
        return {
            "content": "".join(state.content) if state.content else None,
            "reasoning": "".join(state.reasoning) if state.reasoning else None,
            "tool_calls": [state.tool_calls[number] for number in sorted(state.tool_calls, key=str)],
            "finish_reason": state.finish_reason,
            "usage": self.usage,
            "error": self.error,
        }


def _text(value: Json) -> str:
    """``value`` if it is a string, else "" (a wrong type is already a schema finding)."""
    return value if isinstance(value, str) else ""


def _as_index(value: Json) -> int | None:
    """``value`` if it can be an index (an int, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_error_frame(chunk: Json) -> bool:
    return isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk


def _clip(text: Json, limit: int = 60) -> str:
    if isinstance(text, str) and len(text) > limit:
        return repr(text[:limit] + "…")
    return repr(text)
