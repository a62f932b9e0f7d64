"""The hand-written stream converter: chat SSE bytes in, Responses SSE bytes out, per chunk.

The yardstick for the engine's ``StreamSession`` in ``bench/micro.py``: the same job (SSE framing,
JSON decoding, item lifecycle, sequence numbers, JSON encoding), written directly as a small state
machine. It reads SSE framed with LF line ends only (what the canned upstream sends) and emits what
the ``stream:`` section of ``mappings/openai-chat.yaml`` describes: created, in_progress, one item at a
time (added, content_part.added, deltas, done events; everything closes at the finish), then the
terminal event with usage, and no ``[DONE]`` after it. Parallel tool calls that interleave, refusal
deltas and error frames raise ``NotCovered``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from .reference_converters import (_FINISH, _STOP, Clock, NewId, NotCovered, _response_object,
                                   random_id, usage_of)

Json = Any

_HEADS: dict[str, bytes] = {}


def _encode(event: dict) -> bytes:
    kind = event["type"]
    head = _HEADS.get(kind)
    if head is None:
        head = _HEADS[kind] = b"event: " + kind.encode() + b"\ndata: "
    return head + orjson.dumps(event) + b"\n\n"


class ReferenceStream:
    """Chat SSE bytes in, Responses SSE bytes out, for one stream: ``feed()`` then ``close()``."""

    def __init__(self, request: Json = None, *, new_id: NewId = random_id,
                 now: Clock = time.time) -> None:
        self.request = request
        self.new_id = new_id
        self.now = now
        self.buffer = b""
        self.sequence = 0
        self.response_id = ""
        self.created_at: Json = None
        self.model: Json = None
        self.items: list[dict] = []  # closed items, in output_index order
        self.open: dict | None = None  # the one open item: {"item", "kind", "parts", "index"}
        self.calls: dict[int, dict] = {}  # chat tool-call index -> its open state
        self.finish: tuple | None = None
        self.usage: Json = None
        self.started = False
        self.finished = False

    # -- driving it -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        if self.finished:
            return b""
        buffer = self.buffer + data if self.buffer else data
        frames = buffer.split(b"\n\n")
        self.buffer = frames.pop()
        out: list[dict] = []
        for frame in frames:
            payload = _frame_data(frame)
            if payload is None:
                continue
            if payload == b"[DONE]":
                self._terminal(out)
                break
            self._chunk(orjson.loads(payload), out)
        return self._encode_all(out)

    def close(self) -> bytes:
        if self.finished:
            return b""
        out: list[dict] = []
        if self.buffer.strip():
            payload = _frame_data(self.buffer)
            self.buffer = b""
            if payload == b"[DONE]":
                self._terminal(out)
            elif payload is not None:
                self._chunk(orjson.loads(payload), out)
        if not self.finished:
            self._terminal(out)
        return self._encode_all(out)

    def _encode_all(self, events: list[dict]) -> bytes:
        if not events:
            return b""
        return b"".join([_encode(event) for event in events])

    # -- one chunk ------------------------------------------------------------------------------

    def _chunk(self, chunk: dict, out: list) -> None:
        if not self.started:
            self._start(chunk, out)
        if chunk.get("error") is not None:
            raise NotCovered("error frames")
        usage = chunk.get("usage")
        if usage is not None:
            self.usage = usage_of(usage)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                self._text_delta("reasoning", reasoning, out)
            content = delta.get("content")
            if content:
                self._text_delta("message", content, out)
            if delta.get("refusal"):
                raise NotCovered("refusal deltas")
            for call in delta.get("tool_calls") or ():
                self._call_delta(call, out)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish = _FINISH.get(finish_reason, _STOP)
                self._close_open(out, self.finish[1])

    def _start(self, chunk: dict, out: list) -> None:
        self.started = True
        self.response_id = self.new_id("resp")
        self.created_at = int(self.now())
        model = chunk.get("model")
        if model is None and self.request.__class__ is dict:
            model = self.request.get("model")
        self.model = model
        snapshot = self._response("in_progress", [], None, None)
        self._emit(out, {"type": "response.created", "response": snapshot})
        self._emit(out, {"type": "response.in_progress", "response": snapshot})

    def _text_delta(self, kind: str, text: str, out: list) -> None:
        current = self.open
        if current is None or current["kind"] != kind:
            self._close_open(out, "completed")
            current = self._open_text_item(kind, out)
        current["parts"].append(text)
        event_type = "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        event = {"type": event_type, "item_id": current["item"]["id"],
                 "output_index": current["index"], "content_index": 0, "delta": text}
        if kind == "message":
            event["logprobs"] = []
        self._emit(out, event)

    def _open_text_item(self, kind: str, out: list) -> dict:
        index = len(self.items)
        if kind == "message":
            item = {"id": self.new_id("msg"), "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        else:
            item = {"id": self.new_id("rs"), "type": "reasoning", "status": "in_progress",
                    "summary": [], "content": []}
            part = {"type": "reasoning_text", "text": ""}
        self._emit(out, {"type": "response.output_item.added", "output_index": index, "item": item})
        self._emit(out, {"type": "response.content_part.added", "item_id": item["id"],
                         "output_index": index, "content_index": 0, "part": part})
        self.open = {"item": item, "kind": kind, "parts": [], "index": index}
        return self.open

    def _call_delta(self, call: dict, out: list) -> None:
        index = call.get("index", 0)
        state = self.calls.get(index)
        function = call.get("function") or {}
        if state is None:
            self._close_open(out, "completed")
            item = {"id": self.new_id("fc"), "type": "function_call", "status": "in_progress",
                    "arguments": "", "call_id": call.get("id"), "name": function.get("name")}
            state = {"item": item, "kind": "function_call", "parts": [], "index": len(self.items)}
            self.calls[index] = self.open = state
            self._emit(out, {"type": "response.output_item.added", "output_index": state["index"],
                             "item": item})
        elif state is not self.open:
            raise NotCovered("interleaved parallel tool calls")
        arguments = function.get("arguments")
        if arguments:
            state["parts"].append(arguments)
            self._emit(out, {"type": "response.function_call_arguments.delta",
                             "item_id": state["item"]["id"], "output_index": state["index"],
                             "delta": arguments})

    def _close_open(self, out: list, status: str) -> None:
        current = self.open
        if current is None:
            return
        self.open = None
        item = current["item"]
        text = "".join(current["parts"])
        base = {"item_id": item["id"], "output_index": current["index"]}
        kind = current["kind"]
        if kind == "function_call":
            self._emit(out, {"type": "response.function_call_arguments.done", **base,
                             "name": item["name"], "arguments": text})
            done = dict(item, arguments=text, status=status)
        elif kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            self._emit(out, {"type": "response.output_text.done", **base, "content_index": 0,
                             "text": text, "logprobs": []})
            self._emit(out, {"type": "response.content_part.done", **base, "content_index": 0,
                             "part": part})
            done = dict(item, content=[part], status=status)
        else:
            part = {"type": "reasoning_text", "text": text}
            self._emit(out, {"type": "response.reasoning_text.done", **base, "content_index": 0,
                             "text": text})
            self._emit(out, {"type": "response.content_part.done", **base, "content_index": 0,
                             "part": part})
            done = dict(item, content=[part], status=status)
        self.items.append(done)
        self._emit(out, {"type": "response.output_item.done", "output_index": current["index"],
                         "item": done})

    def _terminal(self, out: list) -> None:
        if not self.started:
            self._start({}, out)
        finish = self.finish or _STOP
        self._close_open(out, finish[1])
        response = self._response(finish[0], self.items, self.usage, finish[2])
        self._emit(out, {"type": finish[3], "response": response})
        self.finished = True

    def _response(self, status: str, output: list, usage: Json, incomplete: str | None) -> Json:
        return _response_object(self.response_id, self.created_at, status, self.model, list(output),
                                usage, incomplete, None, self.request)

    def _emit(self, out: list, event: dict) -> None:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        out.append(event)


def _frame_data(frame: bytes) -> bytes | None:
    """The joined ``data`` of one LF-framed SSE frame, or None when it has no data line."""
    if frame.startswith(b"data: ") and b"\n" not in frame:
        return frame[6:]  # the usual case: one data line
    lines = [line[5:].lstrip(b" ") if line.startswith(b"data:") else None
             for line in frame.split(b"\n")]
    data = [line for line in lines if line is not None]
    return b"\n".join(data) if data else None
