"""The ASGI application behind ``mapper serve``: paths, auth, body, routing, conversion, answers.

A plain ASGI callable (the shape of a Starlette middleware, with no framework underneath), because
the proxy must decide exactly when its status line goes out and must see ``http.disconnect``.

    POST /v1/responses, /v1/chat/completions   the paths the routes' mappings serve (``from`` API)
    POST /v1/messages                          ... Anthropic's Messages (``?beta=true`` too)
    POST /v1/messages/count_tokens             a token count the route's mapping estimates
    GET  /v1/models                            routed model names (``engine.proxy.models``)
    GET  /health                               liveness, no auth
    GET  /ready                                readiness: started, store reachable; no auth
    GET  /metrics                              Prometheus metrics (``engine.proxy.metrics``)
    GET, DELETE /v1/responses/{id}             with a response store (``engine.proxy.stored``)
    GET  /v1/responses/{id}/input_items

A ``/v1``-less path (``/responses``) is served too, for clients whose base URL lacks ``/v1``.

Every request is answered, whatever happens. Bad input is a 4xx in the OpenAI error shape whose
``param`` names the field (malformed JSON, a missing or mistyped ``model``, anything the mapping
refuses, a body over the limit); an upstream failure is relayed or becomes 502/504
(``engine.proxy.exchange``); and a bug in mapper is an OpenAI-shaped 500 before the first byte, or
``error`` + ``response.failed`` after it, never a dropped connection. One JSON log line per request.
"""

from __future__ import annotations

import functools
import os
from typing import Callable

import orjson

from ..context import Context
from ..errors import ConversionError, MapperError
from ..mapping import Mapping
from ..store import owner_of
from ..streaming import StreamSession
from ..types import Json, JsonObject
from ..validation.numbers import uncarriable_request
from . import metrics
from .auth import Auth, client_authorization
from .config import ProxyConfig
from .disconnect import run_until_disconnect
from .exchange import Call, end_stream, forward
from .http import (ClientGone, HttpError, Receive, Responder, Scope, Send, error_body, header,
                   read_body)
from .left_out import LeftOut
from .logs import LOGGER, Redactor, RequestLog
from .models import anthropic_list, list_models
from .stored import StoredResponses, Turn
from .upstream import Upstream

__all__ = ["ProxyApp"]

HEALTH_PATHS = frozenset({"/health", "/healthz"})
READY_PATHS = frozenset({"/ready", "/readyz"})
METRICS_PATH = "/metrics"
MODELS_PATHS = frozenset({"/v1/models", "/models"})
RESPONSES_PATH = "/v1/responses"
ANTHROPIC = "anthropic.messages"
COUNT_TOKENS_SUFFIX = "/count_tokens"  # under a path that serves Messages: /v1/messages/count_tokens
STORED_PREFIXES = ("/v1/responses/", "/responses/")
_INTERNAL = "mapper failed on this request (an internal error; the server log has the details)"


class ProxyApp:
    """The proxy: ``ProxyApp(config)`` is an ASGI app. One per process; it owns the upstream pool."""

    def __init__(self, config: ProxyConfig, *, upstream: Upstream | None = None,
                 new_context: Callable[[], Context] = Context) -> None:
        self.config = config
        self.upstream = upstream or Upstream(config.transport)
        self.auth = Auth.of(config.proxy_keys)
        self.redactor = Redactor(config.secrets())
        self.new_context = new_context  # tests pass deterministic_context
        self.left_out = LeftOut()
        # no I/O yet: the store connects at start-up, or on first use
        self.stored = StoredResponses(metrics.CountedStore(config.store.open())) \
            if config.store else None
        self.started = False  # the lifespan start-up is complete (readiness)
        paths = config.router.paths
        self._posts = {path: path for path in paths} | {path.removeprefix("/v1"): path for path in paths}
        # the mapping whose clients read a path's errors (its first route's): Anthropic's clients
        # get Anthropic's error shape, on the token-count path too
        self._error_mappings: dict[str, Mapping] = {}
        for route in config.router.routes:
            for path in (route.path, route.path.removeprefix("/v1")):
                self._error_mappings.setdefault(path, route.mapping)
                self._error_mappings.setdefault(path + COUNT_TOKENS_SUFFIX, route.mapping)

    async def aclose(self) -> None:
        """Close the upstream pool and the store (the lifespan shutdown does this under a server)."""
        await self.upstream.aclose()
        if self.stored is not None:
            await self.stored.store.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan -------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.upstream.client()  # the pool belongs to the server's event loop
                try:
                    if self.stored is not None:
                        await self.stored.store.open()
                except MapperError as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                self.started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.started = False
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request ------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = "req_" + os.urandom(12).hex()
        path = scope["path"].rstrip("/") or "/"
        log = RequestLog(request_id, scope["method"], path)
        respond = Responder(send, [(b"x-request-id", request_id.encode())])
        try:
            await self._route(scope, receive, respond, log, path)
        except HttpError as refusal:
            log.error = str(refusal)
            metrics.refused(refusal.status)
            await self._refuse(respond, path, refusal.status, refusal.body, refusal.headers)
        except ClientGone:
            log.client_disconnected = True
        except Exception:  # a bug in mapper: still an answer, and a traceback in the log
            LOGGER.exception("internal error", extra={"fields": {"request_id": request_id}})
            log.error = "internal error"
            if not respond.started:
                await self._refuse(respond, path, 500,
                                   error_body(_INTERNAL, "server_error", code="internal_error"))
            elif not respond.finished:
                await respond.end()
        finally:
            log.status = respond.status or (499 if log.client_disconnected else None)
            log.first_byte_at = respond.first_byte_at
            fields = log.fields()
            LOGGER.info("request", extra={"fields": fields})
            metrics.current().observe(log.route, log.status, log.stream, log.started,
                                      log.first_byte_at, log.upstream_at, log.upstream_sent,
                                      fields.get("tokens"))

    async def _refuse(self, respond: Responder, path: str, status: int, body: JsonObject,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """An error of the proxy's own, in the shape (and with the status) the path's clients read."""
        mapping = self._error_mappings.get(path)
        if mapping is not None:
            status, body = mapping.own_error(body, status)
        await respond.json(status, body, headers or ())

    async def _route(self, scope: Scope, receive: Receive, respond: Responder, log: RequestLog,
                     path: str) -> None:
        method = scope["method"]
        if path in HEALTH_PATHS:
            _allow(method, "GET")
            await respond.json(200, {"status": "ok"})
        elif path in READY_PATHS:
            _allow(method, "GET")
            await self._ready(respond)
        elif path == METRICS_PATH:
            _allow(method, "GET")
            await respond.send(200, metrics.exposition(), metrics.CONTENT_TYPE)
        elif path in MODELS_PATHS:
            _allow(method, "GET")
            await self._models(scope, receive, respond)
        elif path in self._posts:
            _allow(method, "POST")
            await self._convert_and_forward(scope, receive, respond, log, self._posts[path])
        elif path.endswith(COUNT_TOKENS_SUFFIX) and path.removesuffix(COUNT_TOKENS_SUFFIX) in self._posts:
            _allow(method, "POST")
            await self._count_tokens(scope, receive, respond, log,
                                     self._posts[path.removesuffix(COUNT_TOKENS_SUFFIX)])
        elif self.stored is not None and path.startswith(STORED_PREFIXES):
            self.auth.check(scope)
            rest = path.split("/responses/", 1)[1]
            await self.stored.answer(scope, respond, rest, _owner(scope))
        else:
            raise HttpError(404, error_body(f"Invalid URL ({method} {path})", "invalid_request_error"))

    async def _ready(self, respond: Responder) -> None:
        """200 once started and the store (if any) answers a read; else 503 with the reason."""
        problem = None if self.started else "starting"
        if problem is None and self.stored is not None:
            try:
                await self.stored.store.get("resp_readiness_probe")
            except MapperError as error:
                problem = f"the response store is unavailable: {self.redactor.text(error.message)}"
        if problem is None:
            await respond.json(200, {"status": "ready"})
        else:
            await respond.json(503, error_body(problem, "server_error", code="not_ready"))

    async def _models(self, scope: Scope, receive: Receive, respond: Responder) -> None:
        authorization = self.auth.check(scope)
        redactor = self.redactor.with_secret(_token(authorization))
        # Anthropic's clients say so; they get the models of the routes that serve Messages
        anthropic = header(scope, b"anthropic-version") is not None
        routes = tuple(route for route in self.config.router.routes
                       if (route.mapping.from_api == ANTHROPIC) == anthropic) or \
            self.config.router.routes
        body: list[Json] = []

        async def work() -> None:
            body.append(await list_models(routes, self.upstream, self.auth, authorization,
                                          redactor))

        if await run_until_disconnect(receive, work(), lambda: respond.finished, scope):
            raise ClientGone()
        await respond.json(200, anthropic_list(body[0]) if anthropic else body[0])

    async def _count_tokens(self, scope: Scope, receive: Receive, respond: Responder,
                            log: RequestLog, path: str) -> None:
        """``POST /v1/messages/count_tokens``: the route's mapping answers (an estimate), with no
        upstream call: chat upstreams have no such endpoint."""
        self.auth.check(scope)
        body = _parse(await read_body(scope, receive, self.config.max_body_bytes))
        log.model = model = _model(body)
        route = self.config.router.match(path, model)
        if route is None or route.mapping.count_tokens is None:
            raise HttpError(404, error_body(f"Invalid URL (POST {scope['path']})",
                                            "invalid_request_error"))
        log.route = route.name
        try:
            answer = route.mapping.convert_count_tokens(body, ctx=self.new_context())
        except ConversionError as error:
            raise HttpError(400, error_body(error.message, "invalid_request_error", error.param,
                                            error.client_code)) from None
        await respond.json(200, answer)

    async def _convert_and_forward(self, scope: Scope, receive: Receive, respond: Responder,
                                   log: RequestLog, path: str) -> None:
        authorization = self.auth.check(scope)
        body = _parse(await read_body(scope, receive, self.config.max_body_bytes))
        if self.config.log_bodies:  # before anything can refuse it: a refused body matters most
            log.bodies["request_body"] = self.redactor.with_secret(_token(authorization)).json(body)
        turn = None
        if self.stored is not None and path == RESPONSES_PATH:
            _model(body)  # a missing model is reported before an unknown previous response
            turn = await self.stored.begin(body, _owner(scope), self.new_context().new_id)
        call = self._prepare(body, path, authorization, respond, log, turn)
        try:
            log.client_disconnected = await run_until_disconnect(
                receive, forward(call, self.upstream), lambda: respond.finished, scope)
        except Exception:
            if call.session is None or not respond.started or respond.finished:
                raise
            # a bug mid-stream: the client still gets error + response.failed, not a cut stream
            LOGGER.exception("internal error mid-stream",
                             extra={"fields": {"request_id": log.request_id}})
            log.error = "internal error"
            await end_stream(call, call.session.abort(_INTERNAL, code="server_error"))

    def _prepare(self, body: JsonObject, path: str, authorization: str | None,
                 respond: Responder, log: RequestLog, turn: Turn | None = None) -> Call:
        """Route and convert the request: everything decided before the upstream is called.

        With a store, ``turn`` says what to convert (the expanded input) and what the Response
        echoes (the client's body); without one, both are the client's body.
        """
        request, echo = (turn.request, turn.echo) if turn is not None else (body, body)
        model = _model(body)
        log.model = model
        route = self.config.router.match(path, model)
        if route is None:
            raise HttpError(404, error_body(f"The model `{model}` does not exist or no route of this "
                                            "proxy serves it.", "invalid_request_error", "model",
                                            "model_not_found"))
        log.route = route.name
        log.stream = stream = body.get("stream") is True
        redactor = self.redactor.with_secret(_token(authorization))
        ctx = self.new_context()
        try:
            converted = route.mapping.convert_request(request, ctx=ctx)
            session = StreamSession(route.mapping, request=echo, ctx=self.new_context()) \
                if stream else None
        except ConversionError as error:
            param = turn.param(error.param) if turn is not None else error.param
            raise HttpError(400, error_body(error.message, "invalid_request_error", param,
                                            error.client_code)) from None
        if route.model is not None:
            converted["model"] = route.model
        log.upstream_model = converted.get("model")
        try:
            url = route.url(log.upstream_model)
        except ValueError as error:  # the mapping's upstream_path names {model}, and there is none
            raise HttpError(400, error_body(str(error), "invalid_request_error", "model")) from None
        # left out on purpose: a visible warning rather than a silent loss (the answer's
        # conversion adds what it leaves out: engine.proxy.exchange)
        log.dropped = route.mapping.dropped_fields(request)
        self.left_out.announce(route.name, ctx.left_out, log, respond)
        if self.config.log_bodies:
            log.bodies["upstream_body"] = redactor.json(converted)
        headers = {"content-type": "application/json",
                   "accept": "text/event-stream" if stream else "application/json",
                   **self.auth.upstream_headers(route, authorization)}
        keep = functools.partial(self.stored.keep, turn) \
            if self.stored is not None and turn is not None and turn.store else None
        try:
            payload = orjson.dumps(converted)
        except TypeError:  # an integer past 64 bits, made by a mapping that does not validate
            refusal = uncarriable_request(request)
            raise HttpError(400, error_body(refusal.message, "invalid_request_error", refusal.param,
                                            refusal.client_code)) from None
        return Call(route=route, url=url, request=echo, payload=payload,
                    headers=headers, respond=respond, log=log, redactor=redactor,
                    new_context=self.new_context, session=session,
                    log_bodies=self.config.log_bodies, keep=keep, left_out=self.left_out)


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, error_body(f"Method {method} is not allowed here; use {allowed}.",
                                        "invalid_request_error"), [(b"allow", allowed.encode())])


def _parse(raw: bytes) -> JsonObject:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise HttpError(400, error_body(f"We could not parse the JSON body of your request ({error}).",
                                        "invalid_request_error", code="invalid_json")) from None
    if not isinstance(body, dict):
        raise HttpError(400, error_body("The request body must be a JSON object.",
                                        "invalid_request_error", code="invalid_json"))
    return body


def _model(body: JsonObject) -> str:
    model = body.get("model")
    if model is None:
        raise HttpError(400, error_body("Missing required parameter: 'model'.",
                                        "invalid_request_error", "model",
                                        "missing_required_parameter"))
    if not isinstance(model, str) or not model:
        raise HttpError(400, error_body("Invalid type for 'model': expected a non-empty string.",
                                        "invalid_request_error", "model", "invalid_type"))
    return model


def _owner(scope: Scope) -> str:
    """Who owns the records this request makes or reads: a fingerprint of the client's key."""
    return owner_of(_token(client_authorization(scope)))


def _token(authorization: str | None) -> str | None:
    """The secret part of an ``Authorization`` value, for redaction."""
    if not authorization:
        return None
    return authorization.partition(" ")[2].strip() or authorization
