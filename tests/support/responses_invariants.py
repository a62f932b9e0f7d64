"""The Responses stream invariants (``check_responses_stream``), from PEERS.md §B and the Open Responses spec:

    R1  the first event is response.created (response.in_progress may follow)
    R2  sequence_number starts at 0 and rises by exactly 1
    R3  every event is valid against its own schema ($defs entry picked by `type`)
    R4  output_index is dense in output_item.added order; no event refers to an index that was
        never added or is already done
    R5  every item added is done exactly once; every content/summary part added is done before
        its item; deltas only between their part's added and done; part indexes dense per item
    R6  *.done text, content_part.done part text and output_item.done content equal the sum of the
        deltas; function_call_arguments.done (and the done item) carry the summed arguments, and
        custom_tool_call_input.done (and the done item) the summed input; the
        name in function_call_arguments.done is the item's name; output_text logprobs (token and
        logprob) in the done event, the done part and the done item are those of the deltas
    R7  an item keeps its id (added, every item_id, done, final output); one response.id throughout
    R8  exactly one terminal event, nothing after it (bar a trailing "[DONE]")
    R9  the terminal type matches response.status; incomplete carries incomplete_details.reason;
        failed carries error.code/message and directly follows an `error` event
    R10 the final response's output is exactly the output_item.done items in output_index order
    R11 an item with status incomplete is the last item, in an incomplete or failed response

The checker models the open output items and their content and summary parts, with what each part's
deltas added up to, so that every ``done`` event and the final response can be held against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .invariants import Finding, StreamInvariantError, as_index, as_text
from .schemas import assert_valid_event
from .sse_reader import DONE

Json = Any
Event = dict[str, Json]

LIFECYCLE_TYPES = frozenset({"response.created", "response.queued", "response.in_progress"})
TERMINAL_STATUS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}


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
# a call item's streamed text, by item type, and the event family that streams it
_CALL_TEXT = {"function_call": "arguments", "custom_tool_call": "input"}
_CALL_EVENTS = {"response.function_call_arguments": "function_call",
                "response.custom_tool_call_input": "custom_tool_call"}
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
        output_index = as_index(event.get("output_index"))
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
        state = self.items.get(as_index(output_index))
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
        if state.type in _CALL_TEXT:
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
        field = _CALL_TEXT[state.type]
        streamed = state.arguments if state.argument_deltas else state.arguments_done
        if streamed is None:
            if done.get(field):
                self.fail("R6", f"the done {state.type} carries {field} that were never streamed")
            return
        if done.get(field) != streamed:
            self.fail("R6", f"item {field} {done.get(field)!r} != streamed {streamed!r}")

    # -- parts and deltas -------------------------------------------------------------------

    def on_part(self, event: Event, slot: str, phase: str) -> None:
        state = self._open_item(event)
        if state is None:
            return
        index_name = _SLOT_INDEX[slot]
        number = as_index(event.get(index_name))
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
        part = state.parts[slot].get(as_index(number))
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
            part.text += as_text(event.get("delta"))
            part.logprobs += _token_logprobs(event)
            return
        final = event.get(_text_field(kind))
        part.text_done = final if isinstance(final, str) else ""
        if final != part.text:
            self.fail("R6", f"{_text_field(kind)} {_clip(final)} != the deltas' sum {_clip(part.text)}")
        self._compare_logprobs(self.type, part, event)

    def on_arguments_delta(self, event: Event) -> None:
        state = self._call(event)
        if state is None:
            return
        if state.arguments_done is not None:
            self.fail("R5", f"a {self.type} after its .done")
            return
        state.argument_deltas += 1
        state.arguments += as_text(event.get("delta"))

    def on_arguments_done(self, event: Event) -> None:
        state = self._call(event)
        if state is None:
            return
        if state.arguments_done is not None:
            self.fail("R5", f"a second {self.type}")
            return
        field = _CALL_TEXT[state.type]
        arguments = event.get(field)
        state.arguments_done = arguments if isinstance(arguments, str) else ""
        if arguments != state.arguments:
            self.fail("R6", f"{field} {_clip(arguments)} != the deltas' sum {_clip(state.arguments)}")
        if state.type == "function_call" and event.get("name") != state.name:
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
        "response.custom_tool_call_input.delta": on_arguments_delta,
        "response.custom_tool_call_input.done": on_arguments_done,
        "error": on_error,
    }

    def _open_item(self, event: Event) -> _Item | None:
        """The open item an event refers to by output_index, after checking R4 and its item_id."""
        output_index = event.get("output_index")
        state = self.items.get(as_index(output_index))
        if state is None:
            self.fail("R4", f"output_index {output_index!r} was never added")
            return None
        if state.done_item is not None:
            self.fail("R4", f"output_index {output_index} is already done")
            return None
        if "item_id" in event and event["item_id"] != state.id:
            self.fail("R7", f"item_id {event['item_id']!r} != {state.id!r}, the item at output_index {output_index}")
        return state

    def _call(self, event: Event) -> _Item | None:
        """The open call item an arguments (or custom input) event refers to, of the right type."""
        state = self._open_item(event)
        expected = _CALL_EVENTS[str(self.type).rsplit(".", 1)[0]]
        if state is not None and state.type != expected:
            self.fail("R5", f"a {self.type} event for a {state.type!r} item")
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


def _clip(text: Json, limit: int = 60) -> str:
    if isinstance(text, str) and len(text) > limit:
        return repr(text[:limit] + "…")
    return repr(text)
