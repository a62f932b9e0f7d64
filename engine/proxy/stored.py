"""The proxy's side of the response store: chained turns, kept answers, and the read endpoints.

With a store (``mapper serve --store``), a create request (``POST /v1/responses``) becomes a
``Turn`` before the mapping sees it:

* ``previous_response_id`` names a record, which must exist and belong to the same key (else 404,
  in OpenAI's words). The upstream receives that record's whole input (already expanded, so a chain
  never recurses), then **all** its output items — messages, function calls and reasoning, not only
  messages (vLLM's mistake, PEERS.md §E 7) — then the new input. The earlier ``instructions`` are
  not replayed: the API carries only the new request's over.
* ``store`` (true unless the client says false, as OpenAI's default is) and
  ``previous_response_id`` are removed from the body the mapping converts — its refusals are for
  conversions without a store — while the Response echoes the client's body with ``store`` set to
  what the proxy did. Input items without an id get one, so ``input_items`` can list them.
* The record is written before the client receives the answer or the stream's terminal event, so
  a follow-up sent the moment the answer arrives finds it (LiteLLM's 10 s lag, PEERS.md §C 5).
  Failed and incomplete responses are kept too; a request whose upstream failed before anything
  was produced has no response to keep.

* An ``item_reference`` input item is replaced by the item it names, found in the store by id
  (any earlier response of the same key); an unknown id is a 404, in OpenAI's words.

``background`` and ``conversation`` stay refused by the mapping. The read endpoints are
``GET``/``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items`` (OpenAI's cursor
pagination: ``limit``, ``order``, ``after``). A record is visible only to the key that made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar
from urllib.parse import parse_qs

from ..errors import StoreError
from ..store import ResponseStore, StoredResponse
from ..types import Json, JsonObject
from .http import HttpError, Responder, Scope, error_body

__all__ = ["StoredResponses", "Turn"]

T = TypeVar("T")
# the id prefix OpenAI gives each kind of item
_ITEM_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
                "reasoning": "rs"}
_STORE_FIELDS = ("store", "previous_response_id")
_INPUT_INDEX = re.compile(r"^input\[(\d+)\]")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


@dataclass(slots=True)
class Turn:
    """One create request on a proxy with a store: what is converted, echoed and kept."""

    request: JsonObject  # for the mapping: input expanded, store and previous_response_id removed
    echo: JsonObject  # for the Response's echoed fields: the client's body, store as done
    input: list[Json]  # every input item the upstream sees, with ids
    owner: str
    store: bool  # keep the response
    replayed: int = 0  # how many items of ``input`` come from the previous response

    def param(self, param: str | None) -> str | None:
        """A 400's ``param`` in the client's terms: ``input[N]`` counts the client's own items."""
        match = _INPUT_INDEX.match(param or "")
        if match is None or not self.replayed:
            return param
        index = int(match[1]) - self.replayed
        if index < 0:  # a stored item the mapping now refuses (a route with another mapping)
            return "previous_response_id"
        return f"input[{index}]{param[match.end():]}"


class StoredResponses:
    """The store as the proxy uses it; one per process, shared by every route."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    async def begin(self, body: JsonObject, owner: str, new_id: Callable[[str], str]) -> Turn:
        """Check ``store`` and ``previous_response_id``, expand the chain, give items ids."""
        store = body.get("store")
        if store is not None and not isinstance(store, bool):
            raise _invalid("store", "a boolean")
        previous_id = body.get("previous_response_id")
        if previous_id is not None and (not isinstance(previous_id, str) or not previous_id):
            raise _invalid("previous_response_id", "a response id")
        request = {name: value for name, value in body.items() if name not in _STORE_FIELDS}
        echo = {**body, "store": store is not False}
        new = body.get("input")
        if isinstance(new, str):
            new = [{"type": "message", "role": "user", "content": new}]
        elif new is not None and not isinstance(new, list):
            # not an input the mapping accepts either: its own 400 names the problem
            return Turn(request, echo, [], owner, store=False)
        new = await self._resolve_references(new or [], owner)
        items = [_with_id(item, new_id) for item in new]
        earlier: list[Json] = []
        if previous_id is not None:
            previous = await self._read(previous_id, owner, previous=True)
            earlier = [*previous.input, *previous.response.get("output", ())]
            _refuse_duplicates(earlier, new)
            items = [*earlier, *items]
        if new is not None or previous_id is not None:
            request["input"] = items
        return Turn(request, echo, items, owner, store=store is not False, replayed=len(earlier))

    async def _resolve_references(self, items: list[Json], owner: str) -> list[Json]:
        """``item_reference`` items replaced by the stored items they name (the same key's only).

        Clients that keep ids rather than items (the Vercel AI SDK's default multi-turn) send
        earlier output as ``{"type": "item_reference", "id": "msg_..."}``; the upstream gets the
        item itself. An id this key has not stored is OpenAI's 404.
        """
        resolved = []
        for index, item in enumerate(items):
            if item.__class__ is dict and item.get("type") == "item_reference":
                item_id = item.get("id")
                if item_id.__class__ is not str or not item_id:
                    raise _invalid(f"input[{index}].id", "an item id")
                record = await _guarded(self.store.find_item(item_id))
                found = record.item(item_id) if record is not None and record.owner == owner \
                    else None
                if found is None:
                    raise HttpError(404, error_body(f"Item with id '{item_id}' not found.",
                                                    "invalid_request_error", f"input[{index}]",
                                                    "item_not_found"))
                item = found
            resolved.append(item)
        return resolved

    async def keep(self, turn: Turn, response: Json) -> None:
        """Store the final Response of ``turn``; raises ``StoreError``."""
        if turn.store and isinstance(response, dict) and isinstance(response.get("id"), str):
            await self.store.put(StoredResponse(response, turn.input, turn.owner))

    # -- GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items ------------------------

    async def answer(self, scope: Scope, respond: Responder, rest: str, owner: str) -> None:
        """Serve a read endpoint; ``rest`` is the path after ``/v1/responses/``."""
        method = scope["method"]
        response_id, _, tail = rest.partition("/")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if response_id and not tail:
            _allow(method, ("GET", "DELETE"))
            record = await self._read(response_id, owner)
            if method == "DELETE":
                await _guarded(self.store.delete(response_id))
                await respond.json(200, {"id": response_id, "object": "response.deleted",
                                         "deleted": True})
                return
            if _last(query, "stream") == "true":
                raise HttpError(400, error_body(
                    "stream=true replays a background response, and mapper runs none in the "
                    "background; retrieve the response without it.", "invalid_request_error",
                    "stream"))
            await respond.json(200, record.response)
        elif response_id and tail == "input_items":
            _allow(method, ("GET",))
            record = await self._read(response_id, owner)
            await respond.json(200, _page(record.input, query))
        else:
            raise HttpError(404, error_body(f"Invalid URL ({method} {scope['path']})",
                                            "invalid_request_error"))

    async def _read(self, response_id: str, owner: str, *,
                    previous: bool = False) -> StoredResponse:
        record = await _guarded(self.store.get(response_id))
        if record is None or record.owner != owner:  # another key's record is not there for you
            if previous:
                raise HttpError(404, error_body(
                    f"Previous response with id '{response_id}' not found.",
                    "invalid_request_error", "previous_response_id", "previous_response_not_found"))
            raise HttpError(404, error_body(f"Response with id '{response_id}' not found.",
                                            "invalid_request_error"))
        return record


async def _guarded(work: Awaitable[T]) -> T:
    """A store call whose failure is the client's 503 (the SDKs retry it)."""
    try:
        return await work
    except StoreError as error:
        raise HttpError(503, error_body(f"The response store is unavailable: {error.message}",
                                        "server_error", code="store_unavailable")) from None


def _with_id(item: Json, new_id: Callable[[str], str]) -> Json:
    """An input item as stored: the short ``{role, content}`` form typed, and an id if none."""
    if not isinstance(item, dict):
        return item  # the mapping refuses it
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind is None or item.get("id"):
        return item
    return {"id": new_id(_ITEM_PREFIX.get(kind, "item")), "type": kind,
            **{name: value for name, value in item.items() if name not in ("id", "type")}}


def _refuse_duplicates(earlier: list[Json], new: list[Json]) -> None:
    """An item of the chain sent again: OpenAI's 400, rather than the upstream seeing it twice."""
    known = {item.get("id") for item in earlier if isinstance(item, dict)}
    for index, item in enumerate(new):
        if isinstance(item, dict) and item.get("id") and item["id"] in known:
            raise HttpError(400, error_body(
                f"Duplicate item found with id {item['id']}. Remove duplicate items from your "
                "input and try again.", "invalid_request_error", f"input[{index}]"))


def _page(items: list[Json], query: dict[str, list[str]]) -> JsonObject:
    """One page of input items, as OpenAI lists them (newest first unless ``order=asc``)."""
    order = _last(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise _invalid_query("order", "'asc' or 'desc'")
    limit_text = _last(query, "limit")
    try:
        limit = DEFAULT_LIMIT if limit_text is None else int(limit_text)
    except ValueError:
        raise _invalid_query("limit", f"an integer from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid_query("limit", f"an integer from 1 to {MAX_LIMIT}")
    ordered = items if order == "asc" else items[::-1]
    after = _last(query, "after")
    if after is not None:
        ids = [item.get("id") if isinstance(item, dict) else None for item in ordered]
        if after not in ids:
            raise HttpError(404, error_body(f"Item with id '{after}' not found.",
                                            "invalid_request_error", "after"))
        ordered = ordered[ids.index(after) + 1:]
    data = ordered[:limit]
    return {"object": "list", "data": data,
            "first_id": data[0].get("id") if data else None,
            "last_id": data[-1].get("id") if data else None,
            "has_more": len(ordered) > limit}


def _last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise HttpError(405, error_body(f"Method {method} is not allowed here; use "
                                        f"{' or '.join(allowed)}.", "invalid_request_error"),
                        [(b"allow", ", ".join(allowed).encode())])


def _invalid(param: str, expected: str) -> HttpError:
    return HttpError(400, error_body(f"Invalid type for '{param}': expected {expected}.",
                                     "invalid_request_error", param, "invalid_type"))


def _invalid_query(param: str, expected: str) -> HttpError:
    return HttpError(400, error_body(f"Invalid value for '{param}': expected {expected}.",
                                     "invalid_request_error", param, "invalid_value"))
