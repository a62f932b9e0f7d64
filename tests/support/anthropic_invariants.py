"""The Anthropic Messages stream invariants (``check_anthropic_stream``), from Anthropic's streaming docs
(docs.claude.com/en/docs/build-with-claude/streaming) and the bugs peers ship (issue 14):

    A1  every event is valid against its own schema ($defs entry picked by `type`); no unknown types,
        no "[DONE]"
    A2  message_start comes first and once; its message has empty content and no stop_reason
    A3  content blocks: content_block_start indexes are dense (0, 1, 2...) and in order; a block opens
        only when the previous one is closed; deltas and content_block_stop name the open block; every
        block started is stopped once
    A4  a delta fits its block: text_delta and citations_delta a text block, input_json_delta a
        tool_use (or server_tool_use) block, thinking_delta and signature_delta a thinking block;
        other blocks take no deltas
    A5  tool input travels only in input_json_delta: content_block_start carries `input: {}`, and the
        partial_json pieces add up to a JSON object (or to nothing, meaning {})
    A6  a thinking block ends with a non-empty signature; signature_delta comes once, after the
        thinking deltas
    A7  message_delta comes once (unless allowed more), after the last block closed and before
        message_stop, with a stop_reason; usage.output_tokens never falls below an earlier count
        (usage is cumulative); stop_reason "tool_use" goes with a tool_use block and a tool_use block
        with "tool_use" (or "max_tokens"/"pause_turn"/"refusal"); "stop_sequence" names the sequence
    A8  message_stop is the last event, once; a stream that does not end in an error ends with
        message_delta then message_stop
    A9  an `error` event ends the stream: nothing follows it, and nothing it left open is owed

`ping` may come anywhere between message_start and message_stop; it changes nothing.

The checker keeps the open block and what its deltas added up to, and builds the final Message the way
the anthropic SDK's accumulator does, so tests can compare it with the SDK's own result
(``anthropic_replay``) and validate it against ``messages.response.json``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .anthropic_schemas import event_errors
from .invariants import Finding, StreamInvariantError, as_index, as_text
from .sse_reader import parse_sse_events

Json = Any
Event = dict[str, Json]

# which block types each delta type may extend (tool blocks: the SDK's TRACKS_TOOL_INPUT)
DELTA_BLOCKS = {
    "text_delta": {"text"},
    "citations_delta": {"text"},
    "input_json_delta": {"tool_use", "server_tool_use", "mcp_tool_use"},
    "thinking_delta": {"thinking"},
    "signature_delta": {"thinking"},
}
TOOL_BLOCKS = DELTA_BLOCKS["input_json_delta"]
# stop reasons that may cut a turn with a tool_use block short of "tool_use"
TOOL_USE_CUT_SHORT = {"max_tokens", "pause_turn", "refusal", "model_context_window_exceeded"}


def check_anthropic_sse(body: bytes | str, **options: Any) -> dict[str, Json]:
    """Decode an Anthropic SSE body (every frame needs its ``event:`` line) and check it."""
    return check_anthropic_stream(parse_sse_events(body, require_event_name=True), **options)


def check_anthropic_stream(events: list[Json], *, allow_repeated_message_delta: bool = False) -> dict[str, Json]:
    """Assert every Messages stream invariant (A1-A9) and return a summary of the stream.

    ``allow_repeated_message_delta``: accept several message_delta events, which Anthropic's docs allow
    ("one or more"); mapper sends exactly one.

    Returns ``{"message", "text", "tool_uses", "stop_reason", "usage", "error", "event_types"}``:
    ``message`` is the final Message as the deltas build it (None without message_start),
    ``tool_uses`` is ``[{"id", "name", "input"}]`` with the parsed input.
    """
    return _AnthropicCheck(allow_repeated_message_delta).run(list(events))


@dataclass
class _Block:
    index: int
    type: str | None
    opened_at: int
    block: dict[str, Json]
    partial_json: str = ""
    signature_deltas: int = 0
    closed_at: int | None = None


@dataclass
class _AnthropicCheck:
    allow_repeated_message_delta: bool
    findings: list[Finding] = field(default_factory=list)
    message: dict[str, Json] | None = None
    blocks: list[_Block] = field(default_factory=list)
    deltas_at: list[int] = field(default_factory=list)
    output_tokens: int | None = None
    stop_at: int | None = None
    error_at: int | None = None
    error: Json = None
    index: int = 0
    type: str | None = None

    def run(self, events: list[Json]) -> dict[str, Json]:
        for index, event in enumerate(events):
            self.index = index
            self.type = _name(event.get("type")) if isinstance(event, dict) else None
            self._check_schema(event)
            if not isinstance(event, dict):
                continue
            self._check_order()
            handler = self._HANDLERS.get(self.type)
            if handler is not None:
                handler(self, event)
        self._check_end(events)
        if self.findings:
            raise StreamInvariantError("Anthropic Messages", self.findings)
        return self._summary(events)

    def fail(self, rule: str, message: str, *, at_end: bool = False) -> None:
        index, event_type = (None, None) if at_end else (self.index, self.type)
        self.findings.append(Finding(rule, index, event_type, message))

    def _check_schema(self, event: Json) -> None:
        errors = event_errors(event)
        if errors:
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            self.fail("A1", "schema: " + "; ".join(errors[:3]) + more)

    def _check_order(self) -> None:
        if self.error_at is not None:
            self.fail("A9", f"an event after the error event #{self.error_at}")
        elif self.stop_at is not None:
            self.fail("A8", f"an event after message_stop #{self.stop_at}")
        elif self.index == 0 and self.type not in ("message_start", "error"):
            self.fail("A2", "the first event must be message_start")

    @property
    def open_block(self) -> _Block | None:
        last = self.blocks[-1] if self.blocks else None
        return last if last is not None and last.closed_at is None else None

    # -- message ------------------------------------------------------------------------------

    def on_message_start(self, event: Event) -> None:
        if self.message is not None:
            self.fail("A2", "a second message_start")
            return
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        if message.get("content") != []:
            self.fail("A2", f"message_start's content must be [], got {message.get('content')!r}")
        if message.get("stop_reason") is not None:
            self.fail("A2", f"message_start's stop_reason must be null, got {message.get('stop_reason')!r}")
        self.message = copy.deepcopy(message)
        self.message["content"] = []
        self.output_tokens = _output_tokens(message.get("usage"))

    def on_message_delta(self, event: Event) -> None:
        if self.deltas_at and not self.allow_repeated_message_delta:
            self.fail("A7", f"a second message_delta (the first was #{self.deltas_at[0]})")
        self.deltas_at.append(self.index)
        if self.open_block is not None:
            self.fail("A7", f"message_delta while block {self.open_block.index} is still open")
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        if not delta.get("stop_reason"):
            self.fail("A7", "message_delta carries no stop_reason")
        if delta.get("stop_reason") == "stop_sequence" and not delta.get("stop_sequence"):
            self.fail("A7", "stop_reason is stop_sequence but stop_sequence names none")
        self._check_stop_reason(_name(delta.get("stop_reason")))
        self._check_usage(event.get("usage"))
        if self.message is not None:
            _apply_message_delta(self.message, delta, event.get("usage"))

    def _check_stop_reason(self, stop_reason: Json) -> None:
        tool_blocks = [block.index for block in self.blocks if block.type == "tool_use"]
        if stop_reason == "tool_use" and not tool_blocks:
            self.fail("A7", "stop_reason is tool_use but no tool_use block was streamed")
        elif tool_blocks and stop_reason not in {"tool_use", *TOOL_USE_CUT_SHORT}:
            self.fail("A7", f"stop_reason is {stop_reason!r} after tool_use block(s) {tool_blocks}, expected 'tool_use'")

    def _check_usage(self, usage: Json) -> None:
        output_tokens = _output_tokens(usage)
        if output_tokens is None:
            self.fail("A7", "message_delta's usage has no output_tokens")
            return
        if self.output_tokens is not None and output_tokens < self.output_tokens:
            self.fail("A7", f"usage.output_tokens fell from {self.output_tokens} to {output_tokens}; usage is cumulative")
        self.output_tokens = output_tokens

    def on_message_stop(self, event: Event) -> None:
        self.stop_at = self.index
        if not self.deltas_at:
            self.fail("A8", "message_stop without a message_delta before it")
        if self.open_block is not None:
            self.fail("A3", f"message_stop while block {self.open_block.index} is still open")

    def on_error(self, event: Event) -> None:
        self.error_at, self.error = self.index, event.get("error")

    # -- blocks -------------------------------------------------------------------------------

    def on_block_start(self, event: Event) -> None:
        number = as_index(event.get("index"))
        block = event.get("content_block") if isinstance(event.get("content_block"), dict) else {}
        if self.open_block is not None:
            self.fail("A3", f"block {number} starts while block {self.open_block.index} is still open")
        if self.deltas_at:
            self.fail("A7", f"a block starts after message_delta #{self.deltas_at[0]}")
        if number != len(self.blocks):
            self.fail("A3", f"block index {number!r} starts, but the next index is {len(self.blocks)}")
        block_type = _name(block.get("type"))
        if block_type in TOOL_BLOCKS and block.get("input") != {}:
            self.fail("A5", f"tool input must come in input_json_delta, not content_block_start: input is {block.get('input')!r}")
        self.blocks.append(_Block(len(self.blocks), block_type, self.index, copy.deepcopy(block)))

    def on_block_delta(self, event: Event) -> None:
        state = self._block_for(event, "content_block_delta")
        if state is None:
            return
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        delta_type = _name(delta.get("type"))
        if state.type not in DELTA_BLOCKS.get(delta_type, set()):
            self.fail("A4", f"a {delta_type} sent into block {state.index}, a {state.type} block")
            return
        if state.signature_deltas and delta_type in ("thinking_delta", "signature_delta"):
            self.fail("A6", f"a {delta_type} after the signature_delta of block {state.index}")
        _apply_block_delta(state, delta)

    def on_block_stop(self, event: Event) -> None:
        state = self._block_for(event, "content_block_stop")
        if state is None:
            return
        state.closed_at = self.index
        if state.type in TOOL_BLOCKS:
            state.block["input"] = self._parsed_input(state)
        if state.type == "thinking" and not state.block.get("signature"):
            self.fail("A6", f"thinking block {state.index} closes without a signature")
        if self.message is not None:
            self.message["content"].append(state.block)

    def _block_for(self, event: Event, kind: str) -> _Block | None:
        number = as_index(event.get("index"))
        state = self.open_block
        if state is None or number != state.index:
            known = "was never started" if number is None or number >= len(self.blocks) else "is not open"
            self.fail("A3", f"{kind} for block {event.get('index')!r}, which {known}")
            return None
        return state

    def _parsed_input(self, state: _Block) -> Json:
        if state.partial_json == "":
            return {}
        try:
            value = json.loads(state.partial_json)
        except ValueError as exc:
            self.fail("A5", f"the input_json_delta pieces of block {state.index} are not JSON ({exc}): {state.partial_json[:80]!r}")
            return {}
        if not isinstance(value, dict):
            self.fail("A5", f"the input of block {state.index} is a {type(value).__name__}, not an object")
            return {}
        return value

    # -- end ----------------------------------------------------------------------------------

    def _check_end(self, events: list[Json]) -> None:
        if not events:
            self.fail("A2", "the stream has no events", at_end=True)
            return
        if self.error_at is not None:
            return
        if self.open_block is not None:
            self.fail("A3", f"block {self.open_block.index} (started #{self.open_block.opened_at}) never stopped", at_end=True)
        if not self.deltas_at:
            self.fail("A8", "the stream has no message_delta", at_end=True)
        if self.stop_at is None:
            self.fail("A8", "the stream does not end with message_stop", at_end=True)

    def _summary(self, events: list[Json]) -> dict[str, Json]:
        content = self.message["content"] if self.message is not None else []
        return {
            "message": self.message,
            "text": "".join(as_text(block.get("text")) for block in content if block.get("type") == "text"),
            "tool_uses": [
                {"id": block.get("id"), "name": block.get("name"), "input": block.get("input")}
                for block in content if block.get("type") == "tool_use"
            ],
            "stop_reason": self.message.get("stop_reason") if self.message is not None else None,
            "usage": self.message.get("usage") if self.message is not None else None,
            "error": self.error,
            "event_types": [event.get("type") for event in events if isinstance(event, dict)],
        }

    _HANDLERS = {
        "message_start": on_message_start,
        "message_delta": on_message_delta,
        "message_stop": on_message_stop,
        "content_block_start": on_block_start,
        "content_block_delta": on_block_delta,
        "content_block_stop": on_block_stop,
        "error": on_error,
    }


def _name(value: Json) -> str | None:
    """``value`` if it can name a type or reason (a string), else None (a schema finding already)."""
    return value if isinstance(value, str) else None


def _output_tokens(usage: Json) -> int | None:
    value = usage.get("output_tokens") if isinstance(usage, dict) else None
    return as_index(value)


def _apply_block_delta(state: _Block, delta: dict[str, Json]) -> None:
    """Extend the block as the SDK's accumulator does."""
    block = state.block
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = as_text(block.get("text")) + as_text(delta.get("text"))
    elif kind == "citations_delta":
        citations = block.get("citations") if isinstance(block.get("citations"), list) else []
        block["citations"] = [*citations, delta.get("citation")]
    elif kind == "input_json_delta":
        state.partial_json += as_text(delta.get("partial_json"))
    elif kind == "thinking_delta":
        block["thinking"] = as_text(block.get("thinking")) + as_text(delta.get("thinking"))
    elif kind == "signature_delta":
        state.signature_deltas += 1
        block["signature"] = delta.get("signature")


def _apply_message_delta(message: dict[str, Json], delta: dict[str, Json], usage: Json) -> None:
    """Fold a message_delta into the message as the SDK does: the stop fields replace (null when absent),
    a container only when given, and usage counts overwrite, being cumulative."""
    for key in ("stop_reason", "stop_sequence", "stop_details"):
        message[key] = delta.get(key)
    if delta.get("container") is not None:
        message["container"] = delta["container"]
    if isinstance(usage, dict):
        merged = dict(message["usage"]) if isinstance(message.get("usage"), dict) else {}
        merged.update({key: value for key, value in usage.items() if value is not None})
        message["usage"] = merged
