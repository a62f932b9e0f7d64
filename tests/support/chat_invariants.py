"""The Chat Completions stream invariants (``check_chat_stream``):

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
    C8  `delta.annotations` (URL citations, as OpenAI's search models stream them) comes at most once
        per choice, before its finish_reason: openai-python's stream accumulator cannot merge a
        second list (its entries carry no `index`) and raises

The checker keeps, per choice, what the deltas added up to and where its finish_reason came. An error
frame ends what the stream owes: no finish_reason, usage chunk or "[DONE]" is required after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .invariants import Finding, StreamInvariantError, as_index, as_text
from .schemas import schema_errors
from .sse_reader import DONE

Json = Any


def check_chat_stream(chunks: list[Json], *, expect_usage: bool | None = None) -> dict[str, Json]:
    """Assert every chat stream invariant (C1-C8) and return a summary of the stream.

    ``expect_usage``: True requires one trailing usage chunk (``stream_options.include_usage``),
    False forbids usage anywhere, None accepts at most one, well placed.

    Returns ``{"content", "reasoning", "tool_calls", "annotations", "finish_reason", "usage",
    "error"}`` for choice 0, ``tool_calls`` as ``[{"id", "name", "arguments"}]``.
    """
    return _ChatCheck(expect_usage).run(list(chunks))


@dataclass
class _Choice:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[Json, dict[str, Json]] = field(default_factory=dict)
    annotations: list[Json] | None = None
    annotated_at: int | None = None
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
        state = self.choices.setdefault(as_index(choice.get("index")) or 0, _Choice())
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
        if delta.get("annotations") is not None:
            self._on_annotations(state, delta["annotations"])
        if choice.get("finish_reason") is not None:
            self._on_finish(state, choice["finish_reason"])

    def _on_tool_call(self, state: _Choice, call: dict[str, Json]) -> None:
        number = as_index(call.get("index"))
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
        state.tool_calls[number]["arguments"] += as_text(function.get("arguments"))

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
            "arguments": as_text(function.get("arguments")),
        }

    def _on_annotations(self, state: _Choice, annotations: Json) -> None:
        if state.annotated_at is not None:
            self.fail("C8", f"a second annotations delta (the first was at #{state.annotated_at})")
            return
        if state.finished_at is not None:
            self.fail("C8", f"annotations after finish_reason {state.finish_reason!r} at #{state.finished_at}")
        state.annotations, state.annotated_at = annotations, self.index

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
            "annotations": state.annotations,
            "finish_reason": state.finish_reason,
            "usage": self.usage,
            "error": self.error,
        }


def _is_error_frame(chunk: Json) -> bool:
    return isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk
