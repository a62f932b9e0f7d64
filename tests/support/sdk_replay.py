"""Replay a recorded body through the official ``openai`` SDK and report what the SDK built from it.

The schemas and ``invariants`` say what a stream *should* look like; the SDK says what a real client
*does* with it. Its stream helpers (``responses.stream()``, ``chat.completions.stream()``) run their
own accumulators, which reject things no schema can see: an event before ``response.created``, an
item whose id changes at ``done``, a tool-call delta for an index never introduced. Replaying every
stream the suite emits through them catches those with the client's own code, not our reading of it.

How it works: a ``ReplayServer`` (a stdlib HTTP server on 127.0.0.1, random port, background thread)
answers every POST with whatever body was set for the next call. An ``openai.OpenAI`` client with
``max_retries=0`` is pointed at it and the SDK helper is driven to completion. One server and one
client are shared by the whole test session (``shared_server()``), so a replay costs one local
round trip. Every wait is bounded: client timeout, socket timeout, and a bounded ``stop()``.

``chunk_size`` sends the body with chunked transfer encoding in pieces of that many bytes. The HTTP
parser never merges data across chunk boundaries, so the SDK's SSE decoder really sees those pieces
even if the kernel coalesces the writes.

Each replay returns a ``ReplayResult``; its ``verdict`` uses the vocabulary of the oracle bundle's
``EXPECTED.json`` (accepted, accepted-delta-mismatch, accepted-finish-error, ended-without-completed,
error-surfaced, rejected).
"""

from __future__ import annotations

import atexit
import http.server
import json
import socket
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

import openai

Json = Any

DEFAULT_RESPONSES_REQUEST: dict[str, Json] = {"model": "gpt-replay", "input": "replay"}
DEFAULT_CHAT_REQUEST: dict[str, Json] = {"model": "gpt-replay", "messages": [{"role": "user", "content": "replay"}]}
TIMEOUT = 10.0
TERMINAL_TYPES = ("response.completed", "response.incomplete", "response.failed")
# the exact message of ResponseStream.get_final_response() for incomplete/failed streams
NO_COMPLETED_MESSAGE = "Didn't receive a `response.completed` event."
# keys openai-python's Parsed* models add to what it received (structured-output parsing)
SDK_ONLY_KEYS = frozenset({"parsed", "parsed_arguments"})


@dataclass
class ReplayResult:
    """What the SDK made of a replayed body.

    ``events``: the SDK's own event objects (Responses helper events, or chat stream events).
    ``final``: the final object as JSON, or None (``model_dump(mode="json", by_alias=True,
    exclude_unset=True)``: wire names, and only the fields that were received or that the SDK set;
    ``without_sdk_fields`` drops the SDK's own ``parsed``/``parsed_arguments``).
    ``error``: the exception the SDK raised, or None.
    ``terminal_without_completed``: the stream ended in response.incomplete/response.failed and
    ``get_final_response()`` raised for that, by design; ``terminal`` then holds that event's response.
    ``stage``: where the SDK stopped: "request", "iterate", "final" or "done".
    ``delta_mismatches``: (Responses) text or arguments whose deltas, as the SDK accumulated them, differ
    from the final output; the SDK itself never compares them.
    ``requests``: the JSON bodies the SDK sent.
    """

    mode: str
    events: list[Any] = field(default_factory=list)
    final: dict[str, Json] | None = None
    error: BaseException | None = None
    terminal_without_completed: bool = False
    terminal: dict[str, Json] | None = None
    stage: str = "request"
    delta_mismatches: list[dict[str, Json]] = field(default_factory=list)
    requests: list[Json] = field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        """The ``type`` of every SDK event, in order."""
        return [getattr(event, "type", type(event).__name__) for event in self.events]

    @property
    def error_info(self) -> dict[str, Json] | None:
        """The error's class name and message and, for ``openai.APIError``, status_code, code, type,
        param and the error body. For an HTTP error the SDK's ``message`` is "Error code: 429 - <the
        body's message>"."""
        if self.error is None:
            return None
        info: dict[str, Json] = {"class": type(self.error).__name__, "message": str(self.error)}
        if isinstance(self.error, openai.APIError):
            info["message"] = self.error.message
            for name in ("status_code", "code", "type", "param", "body"):
                info[name] = getattr(self.error, name, None)
        return info

    @property
    def verdict(self) -> str:
        """One word for the outcome, as in the oracle bundle's EXPECTED.json."""
        if isinstance(self.error, (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)):
            return "accepted-finish-error"
        if isinstance(self.error, openai.APIError):
            return "error-surfaced"
        if self.terminal_without_completed:
            return "ended-without-completed"
        if self.error is not None:
            return "rejected"
        return "accepted-delta-mismatch" if self.delta_mismatches else "accepted"


# ------------------------------------------------------------------------------------------------
# the server


@dataclass(frozen=True, slots=True)
class _Reply:
    body: bytes
    content_type: str
    status: int
    chunk_size: int | None


class ReplayServer:
    """A throwaway HTTP server on 127.0.0.1 that answers every POST with the body set by ``reply()``.

    >>> server = ReplayServer().start()
    >>> server.reply(b'{"error": {}}', content_type="application/json", status=500)
    >>> server.stop()
    """

    def __init__(self) -> None:
        self._reply = _Reply(b"", "application/json", 200, None)
        self._lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.OpenAI | None = None
        self.requests: list[Json] = []

    @property
    def base_url(self) -> str:
        """The ``/v1`` URL the SDK client should use."""
        assert self._httpd is not None, "ReplayServer is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def client(self) -> openai.OpenAI:
        """A shared SDK client pointed at this server (no retries, bounded timeout, no proxies)."""
        if self._client is None:
            self._client = openai.OpenAI(
                base_url=self.base_url,
                api_key="test",
                max_retries=0,
                timeout=TIMEOUT,
                # an HTTP(S)_PROXY in the environment must not capture 127.0.0.1
                http_client=openai.DefaultHttpxClient(trust_env=False, timeout=TIMEOUT),
            )
        return self._client

    def start(self) -> ReplayServer:
        """Bind a random port and serve from a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the client and the server; waits at most a few seconds."""
        if self._client is not None:
            self._client.close()
            self._client = None
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        stopper = threading.Thread(target=httpd.shutdown, daemon=True)
        stopper.start()
        stopper.join(timeout=TIMEOUT)
        if thread is not None:
            thread.join(timeout=TIMEOUT)
        httpd.server_close()

    def reply(self, body: bytes, *, content_type: str, status: int = 200, chunk_size: int | None = None) -> None:
        """Answer the following POSTs with this body."""
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        with self._lock:
            self._reply = _Reply(body, content_type, status, chunk_size)
            self.requests = []

    def _current(self) -> _Reply:
        with self._lock:
            return self._reply


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the SDK closes the connection as soon as it has what it wants (after "[DONE]", or on an
        # accumulator error), so a reset mid-write is expected
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _make_handler(server: ReplayServer) -> type[http.server.BaseHTTPRequestHandler]:
    class ReplayHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Keep test output quiet."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                server.requests.append(json.loads(raw) if raw else None)
            except ValueError:
                server.requests.append(raw.decode("utf-8", "replace"))
            reply = server._current()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("x-request-id", "req_replay")
            if reply.chunk_size is None:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in _pieces(reply.body, reply.chunk_size):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return ReplayHandler


def _pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


_shared: ReplayServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> ReplayServer:
    """The session-wide ReplayServer, started on first use and stopped at interpreter exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ReplayServer().start()
            atexit.register(_shared.stop)
        return _shared


# ------------------------------------------------------------------------------------------------
# replays


def replay_responses_stream(
    body: bytes | str,
    *,
    request: dict[str, Json] | None = None,
    chunk_size: int | None = None,
    status: int = 200,
    server: ReplayServer | None = None,
) -> ReplayResult:
    """Drive ``client.responses.stream(**request)`` over ``body`` and ``get_final_response()``."""
    server = server or shared_server()
    _serve(server, body, stream=True, status=status, chunk_size=chunk_size)
    result = ReplayResult(mode="responses-stream")
    snapshots: dict[tuple[str, int, int | None], str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydantic serializer noise on odd shapes
        try:
            with server.client.responses.stream(**{**DEFAULT_RESPONSES_REQUEST, **(request or {})}) as stream:
                result.stage = "iterate"
                for event in stream:
                    result.events.append(event)
                    _record_snapshot(event, snapshots)
                    if event.type in TERMINAL_TYPES:
                        result.terminal = _dump(getattr(event, "response", None))
                result.stage = "final"
                result.final = _dump(stream.get_final_response())
                result.stage = "done"
        except Exception as exc:  # noqa: BLE001 - every SDK failure is a finding to report
            result.error = exc
            result.terminal_without_completed = (
                result.stage == "final"
                and isinstance(exc, RuntimeError)
                and str(exc) == NO_COMPLETED_MESSAGE
                and bool(result.event_types)
                and result.event_types[-1] in ("response.incomplete", "response.failed")
            )
    result.requests = list(server.requests)
    if result.final is not None:
        result.delta_mismatches = _delta_mismatches(snapshots, result.final)
    return result


def replay_chat_stream(
    body: bytes | str,
    *,
    request: dict[str, Json] | None = None,
    chunk_size: int | None = None,
    status: int = 200,
    server: ReplayServer | None = None,
) -> ReplayResult:
    """Drive ``client.chat.completions.stream(**request)`` over ``body`` and ``get_final_completion()``.

    The SDK raises LengthFinishReasonError / ContentFilterFinishReasonError for finish_reason
    length / content_filter; the completion it accumulated is still reported as ``final``.
    """
    server = server or shared_server()
    _serve(server, body, stream=True, status=status, chunk_size=chunk_size)
    result = ReplayResult(mode="chat-stream")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            with server.client.chat.completions.stream(**{**DEFAULT_CHAT_REQUEST, **(request or {})}) as stream:
                result.stage = "iterate"
                for event in stream:
                    result.events.append(event)
                result.stage = "final"
                result.final = _dump(stream.get_final_completion())
                result.stage = "done"
        except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as exc:
            result.error = exc
            result.final = _dump(exc.completion)
        except Exception as exc:  # noqa: BLE001 - every SDK failure is a finding to report
            result.error = exc
    result.requests = list(server.requests)
    return result


def replay_json(
    body: bytes | str | dict[str, Json],
    kind: str = "responses",
    status: int = 200,
    *,
    request: dict[str, Json] | None = None,
    server: ReplayServer | None = None,
) -> ReplayResult:
    """Send a non-stream ``body`` (or an error body with ``status`` >= 400) through ``create()``.

    ``kind`` is "responses" (``client.responses.create``) or "chat" (``client.chat.completions.create``).
    """
    calls = {
        "responses": (lambda client: client.responses.create, DEFAULT_RESPONSES_REQUEST),
        "chat": (lambda client: client.chat.completions.create, DEFAULT_CHAT_REQUEST),
    }
    if kind not in calls:
        raise ValueError(f"kind must be 'responses' or 'chat', not {kind!r}")
    server = server or shared_server()
    if isinstance(body, dict):
        body = json.dumps(body)
    _serve(server, body, stream=False, status=status, chunk_size=None)
    pick_call, defaults = calls[kind]
    result = ReplayResult(mode=f"{kind}-json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            result.final = _dump(pick_call(server.client)(**{**defaults, **(request or {})}))
            result.stage = "done"
        except Exception as exc:  # noqa: BLE001 - every SDK failure is a finding to report
            result.error = exc
    result.requests = list(server.requests)
    return result


def _serve(server: ReplayServer, body: bytes | str, *, stream: bool, status: int, chunk_size: int | None) -> None:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    # an error answer is JSON even on a streaming route, as the API sends it
    content_type = "text/event-stream" if stream and status < 400 else "application/json"
    server.reply(raw, content_type=content_type, status=status, chunk_size=chunk_size)


def _dump(model: Any) -> dict[str, Json] | None:
    # by_alias: wire names (`async`, not `async_`); exclude_unset: only what the body carried or the
    # SDK set, so the result compares directly with the JSON that was sent
    if model is None:
        return None
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False)


def without_sdk_fields(value: Json) -> Json:
    """Drop the keys the SDK's parsing helpers add (``parsed``, ``parsed_arguments``), recursively."""
    if isinstance(value, dict):
        return {key: without_sdk_fields(item) for key, item in value.items() if key not in SDK_ONLY_KEYS}
    if isinstance(value, list):
        return [without_sdk_fields(item) for item in value]
    return value


def _record_snapshot(event: Any, snapshots: dict[tuple[str, int, int | None], str]) -> None:
    """Keep the SDK's running snapshot of each text part and argument string."""
    if event.type == "response.output_text.delta":
        snapshots[("text", event.output_index, event.content_index)] = event.snapshot
    elif event.type == "response.function_call_arguments.delta":
        snapshots[("arguments", event.output_index, None)] = event.snapshot


def _delta_mismatches(
    snapshots: dict[tuple[str, int, int | None], str], final: dict[str, Json]
) -> list[dict[str, Json]]:
    """Where the deltas add up to something other than the final output.

    The SDK returns response.completed's output as the final response and never compares it with
    what the deltas accumulated, so a bridge can stream one text and complete with another.
    """
    output = final.get("output") or []
    mismatches = []
    for (what, output_index, content_index), streamed in sorted(snapshots.items(), key=str):
        item = output[output_index] if output_index < len(output) else {}
        if what == "text":
            content = item.get("content") or []
            final_value = content[content_index].get("text") if content_index < len(content) else None
        else:
            final_value = item.get("arguments")
        if final_value != streamed:
            mismatches.append(
                {"what": what, "output_index": output_index, "content_index": content_index,
                 "streamed": streamed, "final": final_value}
            )
    return mismatches
