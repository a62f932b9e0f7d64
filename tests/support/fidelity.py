"""Shared machinery of the fidelity property tests: a proxy app in process with a canned upstream.

``Harness`` posts a body to the proxy app (``httpx.ASGITransport``) whose upstream is an
``httpx.MockTransport`` that records what it was sent and answers well, so any 5xx is mapper's.
``accounted`` says where each top-level field of a converted request went: read by a rule,
dropped on purpose (the ``x-mapper-dropped`` header), or a refusal rule's field whose condition
did not hold (``store: false`` asks for nothing mapper cannot do).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import httpx
import orjson
from jsonschema import Draft202012Validator

from mapper.engine.coverage import OPENAI_SCHEMAS
from mapper.engine.proxy import ProxyApp, ServeOptions, build_config
from mapper.engine.proxy.upstream import Upstream
from mapper.engine.validation.supplement import supplement

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
    document = orjson.loads((OPENAI_SCHEMAS / f"{schema}.json").read_bytes())
    return Draft202012Validator(supplement(schema, document))


def same(name: str, target: str | None = None) -> Callable[[Json, Json], bool]:
    """A destination check: the upstream's ``target`` (default: the same name) equals the value."""
    return lambda value, upstream: upstream.get(target or name) == value
