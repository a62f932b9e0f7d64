"""Shared machinery of the fidelity property tests: a proxy app in process with a canned upstream.

``Harness`` posts a body to the proxy app (``httpx.ASGITransport``) whose upstream is an
``httpx.MockTransport`` that records what it was sent and answers well, so any 5xx is mapper's.
``accounted`` says where each top-level field of a converted request went: read by a rule,
dropped on purpose (the ``x-mapper-dropped`` header), or a refusal rule's field whose condition
did not hold (``store: false`` asks for nothing mapper cannot do).

``check_valid`` and ``check_invalid`` are the two properties, for either direction: a valid
request is converted (no field lost without a word, direct fields carrying their value) or
refused with an OpenAI error, never a 5xx; a request with one invalid field is a 400 naming it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import httpx
import orjson
from jsonschema import Draft202012Validator

from hypothesis import event, note
from hypothesis import strategies as st

from mapper.engine.apis import schema_path
from mapper.engine.errors import InvalidRequest
from mapper.engine.proxy import ProxyApp, ServeOptions, build_config
from mapper.engine.proxy.upstream import Upstream
from mapper.engine.validation import validator_for_schema
from mapper.engine.validation.supplement import supplement
from .schema_requests import root, wrong_value

Json = Any
EMPTY = (None, "", [], {})


@dataclass
class Harness:
    """One proxy app for one mapping, its event loop, and what its upstream was sent."""

    mapping_name: str
    path: str
    answer: Callable[[Json], httpx.Response]
    sent: list[Json] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        config = build_config(ServeOptions(mapping=self.mapping_name,
                                           upstream="http://upstream.invalid/v1"), env={})
        self.mapping = config.router.routes[0].mapping
        self.app = ProxyApp(config, upstream=Upstream(httpx.MockTransport(self._upstream)))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url="http://proxy", timeout=10)

    def _upstream(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        self.sent.append(body)
        return self.answer(body)

    def post(self, body: Json) -> tuple[httpx.Response, Json | None]:
        """The proxy's answer, and the body the upstream got for it (None if none was sent)."""
        before = len(self.sent)
        response = self.loop.run_until_complete(self.client.post(self.path, content=orjson.dumps(body)))
        return response, (self.sent[-1] if len(self.sent) > before else None)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.aclose())
        self.loop.close()

    def accounted(self, name: str, dropped: set[str]) -> bool:
        """Whether the mapping accounts for top-level field ``name`` of a converted request."""
        document = self.mapping.request
        return (name in document.reads or name in document.passthrough or name in dropped
                or any(reject.field == name for reject in document.rejects))


def dropped_header(response: httpx.Response) -> set[str]:
    return set(filter(None, response.headers.get("x-mapper-dropped", "").split(",")))


@lru_cache(maxsize=None)
def schema_validator(schema: str) -> Draft202012Validator:
    """jsonschema over the vendored schema plus the supplement: the reference the compiled
    validator must never be stricter than."""
    document = orjson.loads(schema_path(schema).read_bytes())
    return Draft202012Validator(supplement(schema, document))


def same(name: str, target: str | None = None) -> Callable[[Json, Json], bool]:
    """A destination check: the upstream's ``target`` (default: the same name) equals the value."""
    return lambda value, upstream: upstream.get(target or name) == value


def accepted(schema: str, body: Json) -> bool:
    """Whether request validation accepts ``body``; when it refuses, the schema must refuse too
    (validation is never stricter than the schema it is compiled from)."""
    try:
        validator_for_schema(schema)(body)
    except InvalidRequest:
        assert not schema_validator(schema).is_valid(body), "validation refused what the schema allows"
        return False
    return True


def check_valid(harness: Harness, body: Json, destinations: dict[str, Callable[[Json, Json], bool]],
                check_answer: Callable[[httpx.Response, Json], None]) -> None:
    """A valid request: a 200 that accounts for every field, or an OpenAI 400; never a 5xx."""
    response, upstream = harness.post(body)
    note(f"{response.status_code} {response.text[:300]}")
    event(f"status {response.status_code}")
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
        assert upstream is None
        return
    assert upstream is not None
    dropped = dropped_header(response)
    for name, value in body.items():
        if value is None:
            continue  # null is "not given"
        assert harness.accounted(name, dropped), f"{name} was lost without a word"
        if name in destinations and value not in EMPTY:
            assert destinations[name](value, upstream), f"{name}={value!r} did not reach the upstream"
    check_answer(response, body)


def invalid_fields(schema: str) -> list[str]:
    """The top-level fields a value can be wrong for."""
    return sorted(name for name, _ in root(schema).properties if wrong_value(schema, name) is not None)


def invalid_requests(schema: str, requests: st.SearchStrategy[Json]) -> st.SearchStrategy[tuple[str, Json]]:
    """A drawn request with one top-level field given a value the schema refuses."""
    fields = invalid_fields(schema)

    @st.composite
    def draw(draw_one: Any) -> tuple[str, Json]:
        body = draw_one(requests)
        name = draw_one(st.sampled_from(fields))
        return name, {**body, name: draw_one(wrong_value(schema, name))}

    return draw()


def check_invalid(harness: Harness, schema: str, name: str, body: Json) -> None:
    """One invalid field: refused by the schema, and a 400 naming it before anything goes upstream."""
    assert not schema_validator(schema).is_valid(body), f"the schema allows {name}={body[name]!r}"
    response, upstream = harness.post(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == name or error["param"].startswith((f"{name}.", f"{name}[")), error
    assert error["code"] in ("invalid_type", "invalid_value", "integer_below_min_value",
                             "integer_above_max_value", "decimal_below_min_value",
                             "decimal_above_max_value", "missing_required_parameter",
                             "empty_array", "empty_string"), error
    assert upstream is None
