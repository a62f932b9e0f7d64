"""``mapper probe``: ask an upstream, with small real requests, which OpenAI features it really has.

"OpenAI-compatible" rarely means identical, and a connection test that only lists ``/models``
passes while the chat path fails (agentscope-ai/CoPaw#944). So the probe sends the requests a
client will send: one minimal call, then one request per feature (the system and developer roles,
``max_tokens`` against ``max_completion_tokens``, streaming and its usage chunk, tools,
``tool_choice: "required"``, parallel tool calls, structured output, an inline image), and reads
what comes back: reasoning fields, whether ``/responses`` exists, the shape of an error body.

Each check ends **ok**, **unsupported** (the upstream refused it with a 4xx: it names or implies
the feature) or **error** (5xx, a timeout, an unreachable host, an auth or rate-limit refusal),
with the upstream's own message. The report maps what failed onto the generic overlays under
``mappings/providers/`` and ``overlay_for`` writes one overlay file that combines them, so a user
with an unknown provider gets a working mapping in one step.

Everything here takes exactly what the command line takes (upstream, model, the key's value,
api, timeout) and returns data; ``cli.py`` only prints. Every request is bounded in time, and the
key goes into one request header and nowhere else: never into a report, a message or an exception.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .probe_report import (ERROR, OK, UNSUPPORTED, Check, ProbeReport, exit_code, fixes, hints, overlay_for,
                           render_table, report_as_json, truncate, unfixable)
from .types import Json
from .upstream_target import base_url, redact_url

__all__ = ["Check", "ProbeReport", "ProbeRun", "base_candidates", "exit_code", "fixes", "hints", "overlay_for",
           "probe", "render_table", "report_as_json", "run", "unfixable"]

APIS = ("chat", "responses")
DEFAULT_TIMEOUT = 30.0  # seconds per request; a small reasoning model can think for a while
CONNECT_TIMEOUT = 10.0
MESSAGE_LIMIT = 240  # characters of an upstream message kept in a report
LIMIT_TOKENS = 5  # max_tokens for the limit checks: far less than counting to 50 needs
FEATURE_TOKENS = 64  # an output limit for feature checks, once one is known to work

# statuses that say nothing about a feature: the key, the rate limit, a proxy in the way
_NOT_A_REFUSAL = frozenset({401, 403, 407, 408, 429})
# a 1x1 red PNG, the smallest image every vision model accepts
_PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8"
          "DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
_ASK = "Reply with the single word OK."
_COUNT = "Count from 1 to 50, separated by spaces."
_TOOL_ASK = "What time is it in Paris and in Tokyo? call get_time once per city."
_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
           "additionalProperties": False}


def probe(upstream_url: str, model: str, *, api_key: str | None = None, api: str = "chat",
          timeout: float = DEFAULT_TIMEOUT,
          transport: httpx.BaseTransport | None = None) -> ProbeReport:
    """Probe ``upstream_url`` (with or without ``/v1``) for ``model``. Raises ``ValueError`` for bad input."""
    if api not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)}, not {api!r}")
    if not model:
        raise ValueError("a model is needed: the probe sends real requests for it")
    if not timeout or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    candidates = base_candidates(upstream_url)
    headers = {"user-agent": "mapper-probe"}
    api_key = (api_key or "").strip() or None  # keys read from files often end with a newline
    if api_key:
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in api_key):
            raise ValueError("the API key holds control characters, which no HTTP header can carry")
        headers["authorization"] = f"Bearer {api_key}"
    limits = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
    with httpx.Client(timeout=limits, headers=headers, transport=transport) as client:
        session = _Session(client, model, timeout, secret=api_key)
        checks = session.run(api, candidates)
    return ProbeReport(upstream=redact_url(upstream_url), api=api, model=model,
                       base_url=redact_url(session.base) if session.base else None,
                       tried=tuple(redact_url(url) for url in session.tried), checks=tuple(checks))


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """What ``mapper probe`` prints and the status it exits with."""

    report: ProbeReport
    output: str
    exit_code: int
    overlay_file: Path | None


def run(upstream_url: str, model: str, *, api_key: str | None = None, api: str = "chat",
        timeout: float = DEFAULT_TIMEOUT, write_overlay: str | Path | None = None, as_json: bool = False,
        transport: httpx.BaseTransport | None = None) -> ProbeRun:
    """``mapper probe`` without the command line: probe, write the overlay if asked, render.

    The output is the table (``as_json`` gives the JSON report instead, with ``overlay_file``), and
    a line saying where the overlay went or why none was written.
    """
    report = probe(upstream_url, model, api_key=api_key, api=api, timeout=timeout, transport=transport)
    written: Path | None = None
    note = ""
    if write_overlay is not None:
        text = overlay_for(report)
        if text is None:
            note = ("no overlay written: overlays are written for chat upstreams" if report.api != "chat"
                    else "no overlay written: the basic chat call fails, so there is nothing to fix yet")
        else:
            written = Path(write_overlay)
            written.write_text(text, encoding="utf-8")
            note = f"overlay written to {written}; start mapper with --mapping {written}"
    if as_json:
        data = {**report_as_json(report), "overlay_file": str(written) if written else None}
        output = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        output = render_table(report) + (note + "\n" if note else "")
    return ProbeRun(report, output, exit_code(report), written)


def base_candidates(url: str) -> list[str]:
    """Base URLs to try for what a user typed: with ``/v1`` and without, the likelier first.

    The URL is normalised as the proxy normalises it (``upstream_target.base_url``: a pasted
    endpoint loses its endpoint, ``/v1/v1`` becomes ``/v1``); then the other ``/v1`` choice is tried.
    """
    base = base_url(url)
    parts = urlsplit(base)
    path = parts.path
    paths = [path, path[:-3]] if path.endswith("/v1") else [path + "/v1", path]
    urls = [urlunsplit((parts.scheme, parts.netloc, p, parts.query, "")) for p in paths]
    return list(dict.fromkeys(urls))


@dataclass(slots=True)
class _Answer:
    """What one request got back: a status and body, or why there is none."""

    status: int | None = None
    body: Json = None
    text: str = ""
    frames: list[Json] = field(default_factory=list)
    event_stream: bool = False
    failure: str | None = None


class _Session:
    """One probe run: the client, the base URL found, and the checks in order."""

    def __init__(self, client: httpx.Client, model: str, timeout: float, secret: str | None) -> None:
        self.client = client
        self.model = model
        self.timeout = timeout
        self.secret = secret
        self.base: str | None = None
        self.basic_answer = _Answer()
        self.tried: list[str] = []
        self.checks: list[Check] = []

    # -- running

    def run(self, api: str, candidates: list[str]) -> list[Check]:
        models_base = self._models(candidates)
        ordered = [models_base] + [c for c in candidates if c != models_base] if models_base else candidates
        basic = self._basic(api, ordered)
        if basic.status == OK:
            (self._chat_checks if api == "chat" else self._responses_checks)(basic)
        self._other_endpoint(api)
        self._error_format(api)
        return self.checks

    def _models(self, candidates: list[str]) -> str | None:
        first: _Answer | None = None
        for base in candidates:
            answer = self._send("GET", _join(base, "/models"))
            first = first or answer
            if answer.status is not None and 200 <= answer.status < 300:
                ids = [m.get("id") for m in (answer.body or {}).get("data") or [] if isinstance(m, dict)] \
                    if isinstance(answer.body, dict) else []
                listed = "listed" if self.model in ids else "not listed"
                self._add("models", "/models", OK, f"{len(ids)} model(s); {self.model} {listed}",
                          answer, listed=self.model in ids)
                return base
        self._add_answer("models", "/models", first or _Answer(failure="not tried"))
        return None

    def _basic(self, api: str, candidates: list[str]) -> Check:
        name, label, path = (("chat", "chat completion", "/chat/completions") if api == "chat"
                             else ("responses", "responses call", "/responses"))
        body = self._chat_body() if api == "chat" else {"model": self.model, "input": _ASK}
        answers: list[tuple[str, _Answer]] = []
        for base in candidates:
            self.tried.append(base)
            answer = self._send("POST", _join(base, path), body)
            answers.append((base, answer))
            if answer.failure is None and answer.status not in (404, 405):
                break  # the route exists: whatever it said is the verdict
        routed = [(b, a) for b, a in answers if a.failure is None and a.status not in (404, 405)]
        base, answer = routed[0] if routed else answers[0]
        self.base = base
        self.basic_answer = answer
        check = self._add_answer(name, label, answer, ok_detail=_basic_detail(api, answer))
        if check.status == OK and not _looks_right(api, answer.body):
            check = self._replace(check, ERROR, "answered 2xx, but not with a "
                                  + ("chat.completion" if api == "chat" else "response") + " object")
        return check

    def _chat_checks(self, basic: Check) -> None:
        send = self._post_chat
        system = send("system_role", "system role",
                      messages=[{"role": "system", "content": "Answer briefly."}, _user(_ASK)])
        send("developer_role", "developer role",
             messages=[{"role": "developer", "content": "Answer briefly."}, _user(_ASK)])
        if system.status == OK:
            send("system_not_first", "system message after the first",
                 messages=[{"role": "system", "content": "Answer briefly."},
                           {"role": "system", "content": "Use English."}, _user(_ASK)])
        self._limit("max_tokens", {"max_tokens": LIMIT_TOKENS})
        self._limit("max_completion_tokens", {"max_completion_tokens": LIMIT_TOKENS})
        stream = self._stream("stream", "stream", {"stream": True})
        if stream.status == OK:
            self._stream("stream_usage", "stream_options.include_usage",
                         {"stream": True, "stream_options": {"include_usage": True}})
        tools = send("tools", "function tools", messages=[_user(_TOOL_ASK)], tools=[_tool()])
        if tools.status == OK:
            send("tool_choice_required", "tool_choice required", messages=[_user(_TOOL_ASK)],
                 tools=[_tool()], tool_choice="required")
            send("parallel_tool_calls", "parallel tool calls", messages=[_user(_TOOL_ASK)],
                 tools=[_tool()], parallel_tool_calls=True)
        send("json_schema", "response_format json_schema",
             response_format={"type": "json_schema",
                              "json_schema": {"name": "answer", "schema": _SCHEMA, "strict": True}})
        send("image", "inline image", messages=[_user([
            {"type": "text", "text": "What colour is this image? One word."},
            {"type": "image_url", "image_url": {"url": _PIXEL}}])])
        self._reasoning_seen(_reasoning_fields_chat(self.basic_answer.body))

    def _responses_checks(self, basic: Check) -> None:
        send = self._post_responses
        send("instructions", "instructions", instructions="Answer briefly.")
        send("developer_role", "developer role",
             input=[{"role": "developer", "content": "Answer briefly."}, _user(_ASK)])
        send("max_output_tokens", "max_output_tokens", max_output_tokens=16)
        self._stream("stream", "stream", {"stream": True}, path="/responses")
        tools = send("tools", "function tools", input=_TOOL_ASK, tools=[_tool(flat=True)])
        if tools.status == OK:
            send("tool_choice_required", "tool_choice required", input=_TOOL_ASK,
                 tools=[_tool(flat=True)], tool_choice="required")
            send("parallel_tool_calls", "parallel tool calls", input=_TOOL_ASK,
                 tools=[_tool(flat=True)], parallel_tool_calls=True)
        send("json_schema", "text.format json_schema",
             text={"format": {"type": "json_schema", "name": "answer", "schema": _SCHEMA,
                              "strict": True}})
        send("image", "inline image", input=[_user([
            {"type": "input_text", "text": "What colour is this image? One word."},
            {"type": "input_image", "image_url": _PIXEL}])])
        body = self.basic_answer.body
        output = body.get("output") if isinstance(body, dict) else None
        kinds = [item.get("type") for item in output or [] if isinstance(item, dict)]
        self._reasoning_seen(["reasoning items"] if "reasoning" in kinds else [])

    def _other_endpoint(self, api: str) -> None:
        """Whether the other API is served too: a Responses upstream needs no bridge."""
        base = self.base or ""
        if api == "chat":
            answer = self._send("POST", _join(base, "/responses"),
                                {"model": self.model, "input": _ASK, "max_output_tokens": 16})
            self._add_answer("responses_endpoint", "/responses endpoint", answer,
                             ok_detail="served: a Responses client could talk to it directly")
        else:
            answer = self._send("POST", _join(base, "/chat/completions"), self._chat_body())
            self._add_answer("chat_endpoint", "/chat/completions endpoint", answer, ok_detail="served")

    def _error_format(self, api: str) -> None:
        """The shape of an error body, from a request whose JSON is cut short."""
        path = "/chat/completions" if api == "chat" else "/responses"
        answer = self._send("POST", _join(self.base or "", path), raw=b'{"model": ')
        if answer.failure is not None:
            self._add("error_format", "error body", ERROR, answer.failure, answer)
        elif answer.status is not None and 200 <= answer.status < 300:
            self._add("error_format", "error body", UNSUPPORTED,
                      "answered 2xx to a body that is not JSON", answer)
        else:
            shape = _error_shape(answer)
            self._add("error_format", "error body", OK,
                      f"{answer.status} {shape}: {self._message(answer)}", answer, shape=shape)

    # -- checks

    def _post_chat(self, name: str, label: str, **fields: Json) -> Check:
        body = {**self._chat_body(), **self._feature_limit(), **fields}
        answer = self._send("POST", _join(self.base, "/chat/completions"), body)
        message = _first_choice(answer.body).get("message") or {}
        calls = None
        if "tools" in fields and isinstance(message, dict):
            calls = len(message.get("tool_calls") or [])
        return self._add_answer(name, label, answer, ok_detail=_accepted(calls))

    def _post_responses(self, name: str, label: str, **fields: Json) -> Check:
        body = {"model": self.model, "input": _ASK, **fields}
        answer = self._send("POST", _join(self.base, "/responses"), body)
        output = answer.body.get("output") if isinstance(answer.body, dict) else None
        calls = None
        if "tools" in fields:
            calls = sum(1 for item in output or []
                        if isinstance(item, dict) and item.get("type") == "function_call")
        return self._add_answer(name, label, answer, ok_detail=_accepted(calls))

    def _limit(self, name: str, limit: dict[str, int]) -> Check:
        """An output limit: refused, ignored, or honoured (the answer stops at the limit)."""
        body = {"model": self.model, "messages": [_user(_COUNT)], **limit}
        answer = self._send("POST", _join(self.base, "/chat/completions"), body)
        check = self._add_answer(name, name, answer)
        if check.status != OK:
            return check
        choice = ((answer.body or {}).get("choices") or [{}])[0] if isinstance(answer.body, dict) else {}
        used = ((answer.body or {}).get("usage") or {}).get("completion_tokens")
        stopped = choice.get("finish_reason") == "length"
        honoured = stopped or (isinstance(used, int) and used <= LIMIT_TOKENS)
        detail = ("honoured: the answer stopped at the limit" if honoured
                  else "accepted, but the answer ran past the limit (the parameter is ignored)")
        return self._replace(check, OK, detail, honoured=honoured)

    def _stream(self, name: str, label: str, fields: dict[str, Json],
                path: str = "/chat/completions") -> Check:
        if path == "/chat/completions":
            body = {**self._chat_body(), **self._feature_limit(), **fields}
        else:
            body = {"model": self.model, "input": _ASK, **fields}
        answer = self._send("POST", _join(self.base, path), body, stream=True)
        check = self._add_answer(name, label, answer)
        if check.status != OK:
            return check
        if not answer.event_stream or not answer.frames:
            return self._replace(check, UNSUPPORTED, "answered 2xx without an event stream")
        if path == "/responses":
            last = answer.frames[-1] if isinstance(answer.frames[-1], dict) else {}
            return self._replace(check, OK, f"{len(answer.frames)} events, the last {last.get('type')}")
        done = "[DONE]" in answer.frames
        detail = f"{len(answer.frames)} chunks" + (", ends with [DONE]" if done else ", no [DONE]")
        if name == "stream_usage":
            usage = any(isinstance(f, dict) and (f.get("usage") or _first_choice(f).get("usage"))
                        for f in answer.frames)
            detail += "; usage sent" if usage else "; accepted, but no usage in the stream"
            return self._replace(check, OK, detail, usage=usage)
        return self._replace(check, OK, detail, done=done)

    def _reasoning_seen(self, fields: list[str]) -> None:
        if fields:
            self._add("reasoning", "reasoning in the answer", OK, ", ".join(fields), None, fields=fields)
        else:
            self._add("reasoning", "reasoning in the answer", UNSUPPORTED,
                      "none seen (not a reasoning model, or its thinking is off)", None, fields=[])

    # -- requests

    def _chat_body(self) -> dict[str, Json]:
        return {"model": self.model, "messages": [_user(_ASK)]}

    def _feature_limit(self) -> dict[str, int]:
        """An output limit the upstream takes, so feature checks stay cheap."""
        for name in ("max_tokens", "max_completion_tokens"):
            check = next((c for c in self.checks if c.name == name), None)
            if check is not None and check.status == OK and check.facts.get("honoured"):
                return {name: FEATURE_TOKENS}
        return {}

    def _send(self, method: str, url: str, body: Json = None, *, raw: bytes | None = None,
              stream: bool = False) -> _Answer:
        deadline = time.monotonic() + self.timeout
        content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"content-type": "application/json"} if content is not None else {}
        try:
            with self.client.stream(method, url, content=content, headers=headers) as response:
                answer = _Answer(status=response.status_code)
                answer.event_stream = "text/event-stream" in response.headers.get("content-type", "")
                if stream and answer.event_stream and 200 <= response.status_code < 300:
                    answer.frames = _read_frames(response, deadline)
                else:
                    answer.text = _read_text(response, deadline)
                    answer.body = _json_or_none(answer.text)
                return answer
        except httpx.TimeoutException:
            return _Answer(failure=f"no answer within {self.timeout:g}s")
        except _Overtime:
            return _Answer(failure=f"the answer took longer than {self.timeout:g}s")
        except httpx.HTTPError as error:
            return _Answer(failure=self._redact(f"unreachable: {type(error).__name__}: {error}"))

    # -- recording

    def _add_answer(self, name: str, label: str, answer: _Answer, ok_detail: str = "") -> Check:
        if answer.failure is not None:
            return self._add(name, label, ERROR, answer.failure, answer)
        status = answer.status or 0
        if 200 <= status < 300:
            return self._add(name, label, OK, ok_detail or "accepted", answer)
        verdict = UNSUPPORTED if (400 <= status < 500 and status not in _NOT_A_REFUSAL) or status == 501 \
            else ERROR
        return self._add(name, label, verdict, f"{status} {self._message(answer)}", answer)

    def _add(self, name: str, label: str, status: str, detail: str, answer: _Answer | None,
             **facts: Json) -> Check:
        check = Check(name, label, status, self._redact(detail),
                      answer.status if answer is not None else None, facts)
        self.checks.append(check)
        return check

    def _replace(self, check: Check, status: str, detail: str, **facts: Json) -> Check:
        updated = Check(check.name, check.label, status, self._redact(detail), check.http_status,
                        {**check.facts, **facts})
        self.checks[self.checks.index(check)] = updated
        return updated

    def _message(self, answer: _Answer) -> str:
        return truncate(_upstream_message(answer.status or 500, answer.body, answer.text), MESSAGE_LIMIT)

    def _redact(self, text: str) -> str:
        if self.secret:
            text = text.replace(self.secret, "***")
        return text


class _Overtime(Exception):
    """A body that keeps trickling past the probe's time bound."""


def _read_text(response: httpx.Response, deadline: float, limit: int = 1 << 20) -> str:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
        if time.monotonic() > deadline:
            raise _Overtime
    return b"".join(chunks).decode("utf-8", errors="replace")


def _read_frames(response: httpx.Response, deadline: float) -> list[Json]:
    """The ``data:`` payloads of an event stream (JSON-decoded, ``[DONE]`` kept as the string)."""
    frames: list[Json] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            frames.append(payload if payload == "[DONE]" else _json_or_none(payload))
            if payload == "[DONE]":
                break
        if time.monotonic() > deadline:
            raise _Overtime
    return frames


# -- reading answers -------------------------------------------------------------------------


def _json_or_none(text: str) -> Json:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _first_choice(chunk: Json) -> dict[str, Json]:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}


def _accepted(calls: int | None) -> str:
    if calls is None:
        return "accepted"
    if calls:
        return f"accepted; {calls} tool call(s) in the answer"
    return "accepted; the model answered without a call"


def _looks_right(api: str, body: Json) -> bool:
    if not isinstance(body, dict):
        return False
    return isinstance(body.get("choices"), list) if api == "chat" else isinstance(body.get("output"), list)


def _basic_detail(api: str, answer: _Answer) -> str:
    if api == "chat":
        return f"finish_reason {_first_choice(answer.body).get('finish_reason')}"
    return f"status {(answer.body or {}).get('status') if isinstance(answer.body, dict) else None}"


def _reasoning_fields_chat(body: Json) -> list[str]:
    message = _first_choice(body).get("message") or {}
    return [name for name in ("reasoning_content", "reasoning", "reasoning_details")
            if isinstance(message, dict) and message.get(name)]


@lru_cache(maxsize=1)
def _error_mapping() -> Any:
    from . import load_mapping  # the base mapping reads every error shape mapper knows
    return load_mapping("openai-chat")


def _upstream_message(status: int, body: Json, text: str) -> str:
    """The upstream's own message, whatever the shape of its error body."""
    converted = _error_mapping().convert_error(body if body is not None else text, status=status)
    return str(converted["error"]["message"])


def _error_shape(answer: _Answer) -> str:
    body = answer.body
    if not isinstance(body, dict):
        return "plain text" if answer.text.strip() else "empty body"
    error = body.get("error")
    if isinstance(error, dict) and "message" in error:
        return 'OpenAI shape {"error": {"message": ...}}'
    if isinstance(error, str):
        return 'string {"error": "..."}'
    if "detail" in body:
        return 'FastAPI {"detail": ...}'
    if body.get("object") == "error":
        return 'vLLM {"object": "error", "message": ...}'
    return "other JSON"


def _join(base: str, path: str) -> str:
    """``path`` under ``base``, keeping the base's query (``?api-version=…``) at the end."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path + path, parts.query, ""))


def _user(content: Json) -> dict[str, Json]:
    return {"role": "user", "content": content}


def _tool(flat: bool = False) -> dict[str, Json]:
    function = {"name": "get_time", "description": "The current time in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}
    return {"type": "function", **function} if flat else {"type": "function", "function": function}
