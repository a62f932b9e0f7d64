"""A fake OpenAI-compatible upstream that tests run as a real HTTP server on 127.0.0.1.

Why a real server and not `httpx.MockTransport`: the proxy's end-to-end tests and the provider-quirk tests
need what only sockets show — chunked SSE arriving frame by frame, an upstream that dies mid-stream, a
client that hangs up while the upstream is still talking.

How it is put together:

- **Replies** (`upstream_replies`) are small frozen dataclasses that know how to send themselves. Tests
  queue them per path with `FakeUpstream.expect`; the default answers are sent as the same kinds.
- **The toy model** (`toy_model`) is deterministic and speaks both Chat Completions and Responses,
  streaming or not; it answers whatever no script answers. Another model can take its place on either
  API (`chat_model=`, `responses_model=`, e.g. `scripted_agent.AgentPlan(...).answer` for an agent
  client's tool loop).
- **Quirks** (`provider_quirks`) reject what a real provider rejects before any scripted or default
  reply; the server applies them, along with auth and Azure's addressing.
- **The server** is aiohttp in a background thread with its own event loop. It runs with
  `handler_cancellation=True`: when the client hangs up, aiohttp cancels the handler task at once
  (`RequestHandler.connection_lost`), and the handler records that in `disconnects` / `disconnected`.
  Cancellations caused by `stop()` or by a deliberate `drop_after` are not counted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from aiohttp import web

from .loop_thread import stop_loop_thread
from .provider_quirks import (AZURE_PATH, BODY_QUIRKS, KNOWN_QUIRKS, REASONING_QUIRKS, RESPONSES_REASONING_QUIRKS,
                              ROUTE_QUIRKS, THINKING_SWITCHES)
from .toy_model import (Answer, chat_answer, chat_chunks, chat_completion, response_events, response_object,
                        responses_answer)
from .upstream_replies import DROPPED, ERROR_FORMATS, ErrorReply, JsonReply, Reply, SseReply, event_frame

Json = Any

DEFAULT_MODELS = ("fake-model",)
STOP_GRACE = 0.25  # seconds aiohttp waits for in-flight handlers on stop() before cancelling them


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the fake upstream received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Json | None  # parsed body, or None when the body is empty or not JSON
    body: bytes


# --------------------------------------------------------------------------------------------- server


class FakeUpstream:
    """A fake OpenAI-compatible provider on 127.0.0.1, served from a background thread.

        with FakeUpstream(quirks=["no_developer_role"]) as upstream:
            upstream.expect("/v1/chat/completions", error_reply(429, "slow down", "rate_limit_error"))
            httpx.post(upstream.url("/chat/completions"), json={...})
            assert upstream.last_json["model"] == "fake-model"
    """

    def __init__(
        self,
        models: Iterable[str] = DEFAULT_MODELS,
        quirks: Iterable[str] = (),
        api_key: str | None = None,
        stream_delay: float = 0.0,
        chat_model: Callable[[Json, bool], Answer] = chat_answer,
        responses_model: Callable[[Json, bool], Answer] = responses_answer,
    ) -> None:
        self.models = tuple(models)
        self.chat_model = chat_model  # (chat request, reasoning on) -> Answer; a scripted agent plugs in here
        self.responses_model = responses_model  # the same for Responses requests
        self.stream_delay = stream_delay  # seconds between default-model stream frames
        self.quirks = tuple(quirks)
        unknown = sorted(set(self.quirks) - KNOWN_QUIRKS)
        if unknown:
            raise ValueError(f"unknown quirk(s) {unknown}; known: {sorted(KNOWN_QUIRKS)}")
        for quirk in ("require_auth", "azure"):
            if quirk in self.quirks and not api_key:
                raise ValueError(f"quirk '{quirk}' needs api_key=")
        self.api_key = api_key
        self.error_format = next((q for q in self.quirks if q in ERROR_FORMATS), "openai")
        self.reasoning_key = next((REASONING_QUIRKS[q] for q in self.quirks if q in REASONING_QUIRKS), None)
        self.reasoning_in = next((RESPONSES_REASONING_QUIRKS[q] for q in self.quirks
                                  if q in RESPONSES_REASONING_QUIRKS), None)
        self.blocked_paths = frozenset().union(*(ROUTE_QUIRKS[q] for q in self.quirks if q in ROUTE_QUIRKS))
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.disconnected_at: float | None = None  # time.monotonic() of the last client hang-up
        self.port: int | None = None
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._numbers = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._startup_error: BaseException | None = None

    # ---- test-facing API

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, what an OpenAI client takes as base URL."""
        return self.url("")

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`, for paths outside `/v1`."""
        if self.port is None:
            raise RuntimeError("FakeUpstream is not started")
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of `path` under `/v1`: `url("/models")`, `url("chat/completions")`, `url("/v1/models")`."""
        return self.origin + _under_v1(path)

    def expect(self, path: str, *replies: Reply) -> FakeUpstream:
        """Queue replies for `path` ("/v1/chat/completions" or "/chat/completions"), used before the default."""
        with self._lock:
            self._scripts[_under_v1(path)].extend(replies)
        return self

    @property
    def last(self) -> Recorded:
        """The most recent request."""
        with self._lock:
            if not self.requests:
                raise AssertionError("FakeUpstream received no request")
            return self.requests[-1]

    @property
    def last_json(self) -> Json | None:
        """The parsed body of the most recent request."""
        return self.last.json

    def reset(self) -> None:
        """Forget requests, scripted replies and disconnects (for a server shared between tests)."""
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self.disconnects = 0
            self.disconnected_at = None
            self.disconnected.clear()

    # ---- lifecycle

    def start(self, timeout: float = 5.0) -> FakeUpstream:
        """Start serving on a free port; raises if the server is not up within `timeout` seconds."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstream is already started")
        ready = threading.Event()
        self._startup_error, self._stopping = None, False
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._startup_error is not None:
            error = self._startup_error
            self.stop(timeout)
            reason = f"failed: {error!r}" if error else f"did not start within {timeout}s"
            raise RuntimeError(f"FakeUpstream {reason}") from error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; in-flight handlers get `STOP_GRACE` seconds, then are cancelled. Idempotent."""
        if self._thread is None:
            return
        stop_loop_thread(self._thread, self._loop, self._stop, timeout, "FakeUpstream")
        self._thread = self._loop = self._stop = None
        self.port = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._startup_error = exc
            ready.set()
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client hang-up cancels the handler task (how disconnects are seen)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=STOP_GRACE, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()
        finally:
            self._stopping = True
            await runner.cleanup()

    # ---- request handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            json=_parse_json(body),
            body=body,
        )
        with self._lock:
            self.requests.append(recorded)
        reply = self._reply_for(recorded)
        try:
            return await reply.send(request, self)
        except (asyncio.CancelledError, ConnectionResetError):
            if not self._stopping and not DROPPED.get():
                self._note_disconnect()
            raise

    def _note_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
            self.disconnected_at = time.monotonic()
        self.disconnected.set()

    def _reply_for(self, recorded: Recorded) -> Reply:
        """Auth (Azure's addressing too), then route, body quirks, then scripted replies, then the toy model."""
        if "azure" in self.quirks:
            routed = self._azure(recorded)
            if not isinstance(routed, Recorded):
                return routed
            recorded = routed
        if "require_auth" in self.quirks and recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return ErrorReply(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if recorded.path in self.blocked_paths:
            return ErrorReply(404, f"Invalid URL ({recorded.method} {recorded.path})")
        if recorded.method == "POST" and recorded.path in ("/v1/chat/completions", "/v1/responses"):
            if not isinstance(recorded.json, dict):
                return ErrorReply(400, "We could not parse the JSON body of your request.")
            for quirk in self.quirks:
                problem = BODY_QUIRKS[quirk](recorded.json) if quirk in BODY_QUIRKS else None
                if problem:
                    return ErrorReply(400, problem)
        with self._lock:
            script = self._scripts.get(recorded.path)
            if script:
                return script.popleft()
        route = self._routes().get((recorded.method, recorded.path))
        return route(recorded.json) if route else ErrorReply(404, f"Invalid URL ({recorded.method} {recorded.path})")

    def _azure(self, recorded: Recorded) -> Recorded | ErrorReply:
        """Azure OpenAI: the key in `api-key`; v1 paths, or deployment paths that need `api-version`."""
        # https://learn.microsoft.com/azure/foundry/openai/api-version-lifecycle
        if recorded.headers.get("api-key") != self.api_key:
            return ErrorReply(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                              "to provide a valid key for an active subscription and use a correct regional API "
                              "endpoint for your resource.", code="401")
        match = AZURE_PATH.match(recorded.path)
        if match is None or (match["deployment"] and not recorded.query.get("api-version")):
            return ErrorReply(404, "Resource not found", code="404")
        return replace(recorded, path="/v1" + match["endpoint"])

    def _routes(self) -> dict[tuple[str, str], Callable[[Json], Reply]]:
        return {
            ("GET", "/v1/models"): self._models,
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/responses"): self._responses,
        }

    def _models(self, body: Json) -> Reply:
        models = [{"id": model, "object": "model", "created": 0, "owned_by": "fake"} for model in self.models]
        return JsonReply({"object": "list", "data": models})

    def _chat(self, body: Json) -> Reply:
        thinks = all(THINKING_SWITCHES[quirk](body) for quirk in self.quirks if quirk in THINKING_SWITCHES)
        reasoning_key = self.reasoning_key if thinks else None
        answer = self.chat_model(body, reasoning_key is not None)
        completion_id = f"chatcmpl-fake-{next(self._numbers)}"
        model = body.get("model") or self.models[0]
        if not body.get("stream"):
            return JsonReply(chat_completion(answer, completion_id, model, reasoning_key))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = chat_chunks(answer, completion_id, model, reasoning_key, include_usage)
        return SseReply(tuple(chunks), self.stream_delay)

    def _responses(self, body: Json) -> Reply:
        effort = (body.get("reasoning") or {}).get("effort")
        reasoning_in = self.reasoning_in if effort not in (None, "none") else None
        answer = self.responses_model(body, reasoning_in is not None)
        number = next(self._numbers)
        model = body.get("model") or self.models[0]
        if not body.get("stream"):
            return JsonReply(response_object(body, answer, number, model, reasoning_in))
        events = response_events(body, answer, number, model, reasoning_in)
        return SseReply(tuple(event_frame(event) for event in events), self.stream_delay)


def _under_v1(path: str) -> str:
    path = "/" + path.lstrip("/") if path else ""
    return path if path == "/v1" or path.startswith("/v1/") else "/v1" + path


def _parse_json(body: bytes) -> Json | None:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
