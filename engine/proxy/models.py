"""``GET /v1/models``: the model names the proxy routes, from the routes or from their upstreams.

A route that lists ``models`` advertises exactly those. Any other route asks its upstream's
``/models`` and keeps the names its pattern matches (a default route keeps them all). A route that
renames every model (``model:``) and lists none advertises nothing: the names its clients may use
are not the upstream's. Routes are read in order and the first mention of a name wins.

An upstream that fails is skipped when other routes still produce names; if none do, its failure
is the answer (with its status, in the OpenAI error shape), so that a single-upstream proxy
reports the upstream's own 401 or an unreachable upstream truthfully.

Anthropic's clients (they send ``anthropic-version``; Claude Code's gateway model discovery) get the
models of the routes that serve Messages, in Anthropic's list shape (``anthropic_list``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson

from ..errors import UpstreamError
from ..types import Json
from .auth import Auth
from .http import HttpError, error_body
from .logs import Redactor
from .routes import Route
from .upstream import ERROR_BODY_LIMIT, Upstream

__all__ = ["anthropic_list", "list_models"]

_LIST_TIMEOUT_CAP = 30.0  # seconds: listing models never waits as long as a completion may


async def list_models(routes: tuple[Route, ...], upstream: Upstream, auth: Auth,
                      authorization: str | None, redactor: Redactor) -> Json:
    """The ``{"object": "list", "data": [...]}`` body; ``HttpError`` if nothing could be listed."""
    listed: dict[str, Json] = {}
    fetched: dict[tuple[str, tuple[tuple[str, str], ...]], list[Json] | HttpError] = {}
    failure: HttpError | None = None
    for route in routes:
        if route.models:
            for name in route.models:
                listed.setdefault(name, {"id": name, "object": "model", "created": 0,
                                         "owned_by": route.name})
            continue
        if route.model is not None:
            continue
        headers = auth.upstream_headers(route, authorization)
        source = (route.models_url, tuple(sorted(headers.items())))
        if source not in fetched:
            fetched[source] = await _fetch(route, upstream, headers, redactor)
        models = fetched[source]
        if isinstance(models, HttpError):
            failure = failure or models
            continue
        for model in models:
            name = model.get("id") if isinstance(model, dict) else None
            if isinstance(name, str) and route.matches(name):
                listed.setdefault(name, model)
    if not listed and failure is not None:
        raise failure
    return {"object": "list", "data": list(listed.values())}


async def _fetch(route: Route, upstream: Upstream, key_headers: dict[str, str],
                 redactor: Redactor) -> list[Json] | HttpError:
    headers = {"accept": "application/json", **key_headers}
    timeouts = route.timeouts.replace(read=min(route.timeouts.read, _LIST_TIMEOUT_CAP),
                                      idle=min(route.timeouts.idle, _LIST_TIMEOUT_CAP))
    try:
        async with upstream.open("GET", route.models_url, headers=headers,
                                 timeouts=timeouts) as reply:
            raw = await reply.read(ERROR_BODY_LIMIT * 8)
            status = reply.status
    except UpstreamError as error:
        message = redactor.text(error.message)
        return HttpError(error.status, error_body(message, "server_error", code=error.error_type))
    body: Any
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", errors="replace")
    if not 200 <= status < 300:
        converted = redactor.json(route.mapping.convert_error(body, status=status))
        return HttpError(status, converted)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return HttpError(502, error_body("the upstream's model list is not {\"data\": [...]}",
                                         "server_error", code="bad_upstream_response"))
    return data


def anthropic_list(listed: Json) -> Json:
    """An OpenAI model list in Anthropic's shape (``type``, ``display_name``, ``created_at``, paging)."""
    data = [{"type": "model", "id": model["id"], "display_name": model["id"],
             "created_at": _iso(model.get("created")), "lifecycle": "active"}
            for model in listed.get("data") or () if isinstance(model, dict) and model.get("id")]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def _iso(created: Json) -> str:
    """Unix seconds (OpenAI's ``created``) as the RFC 3339 time Anthropic's ``created_at`` is."""
    seconds = created if isinstance(created, int) and created >= 0 else 0
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
