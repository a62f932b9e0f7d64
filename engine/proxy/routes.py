"""Routes: which upstream, mapping and key serve a request, picked by path and model name.

A route joins a model-name pattern to an upstream base URL and a compiled mapping (plus an
optional model rename, upstream key and timeouts). The mapping says which API the route serves
and which it calls: its ``from`` API gives the path clients post to (``openai.responses`` →
``/v1/responses``, ``openai.chat`` → ``/v1/chat/completions``) and its ``to`` API the upstream's
endpoint, so one routes file can mix both directions. The mapping's options may move the endpoint
and the key's header (``engine.upstream_target``; Azure's deployments and ``api-key`` header).

Matching is by path first, then by model, in file order: the first route whose pattern is found
in the model name wins (``re.search``; anchor with ``^…$`` to match whole names). A route with no
pattern is a default route and matches every model; it must come last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from ..mapping import Mapping
from ..upstream_target import API_PATHS, auth_headers, endpoint_url, models_url
from .upstream import Timeouts

__all__ = ["Route", "Router", "served_path"]


def served_path(api: str) -> str:
    """The path a client of ``api`` posts to: ``openai.chat`` → ``/v1/chat/completions``."""
    return "/v1" + API_PATHS[api]


@dataclass(frozen=True, slots=True)
class Route:
    """One route, resolved at start-up: compiled mapping, normalised URL, key read from the env."""

    name: str
    pattern: re.Pattern[str] | None  # None: the default route, every model
    upstream: str  # normalised base URL, e.g. http://127.0.0.1:11434/v1
    mapping: Mapping
    model: str | None = None  # the upstream's model name, whatever the client asked for
    api_key: str | None = field(default=None, repr=False)  # the upstream key, from api_key_env
    api_key_env: str | None = None
    # ``Authorization: Basic`` from credentials in the upstream URL, which the URL no longer holds
    basic_auth: str | None = field(default=None, repr=False)
    timeouts: Timeouts = Timeouts()
    models: tuple[str, ...] = ()  # names GET /v1/models lists for this route

    @property
    def path(self) -> str:
        """The path this route serves."""
        return served_path(self.mapping.from_api)

    def url(self, model: str | None) -> str:
        """The upstream endpoint for a request to ``model`` (an ``upstream_path`` may name it)."""
        return endpoint_url(self.upstream, self.mapping.options, api=self.mapping.to_api, model=model)

    @property
    def url_template(self) -> str:
        """The endpoint for logs, ``{model}`` left in when the path names the model."""
        return self.url("{model}").replace("%7Bmodel%7D", "{model}")

    @property
    def models_url(self) -> str:
        """The upstream's model list."""
        return models_url(self.upstream, self.mapping.options)

    def key_headers(self, key: str | None) -> dict[str, str]:
        """The header carrying ``key`` upstream: ``Authorization: Bearer`` or the mapping's own."""
        return auth_headers(self.mapping.options, key)

    def matches(self, model: str) -> bool:
        """True when this route takes requests for ``model``."""
        return self.pattern is None or self.pattern.search(model) is not None


@dataclass(frozen=True, slots=True)
class Router:
    """The routes in match order, grouped by the path they serve."""

    routes: tuple[Route, ...]
    by_path: dict[str, tuple[Route, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Route]] = {}
        for route in self.routes:
            grouped.setdefault(route.path, []).append(route)
        object.__setattr__(self, "by_path", {path: tuple(group) for path, group in grouped.items()})

    @classmethod
    def of(cls, routes: Iterable[Route]) -> "Router":
        return cls(tuple(routes))

    @property
    def paths(self) -> frozenset[str]:
        """Every path some route serves."""
        return frozenset(self.by_path)

    def match(self, path: str, model: str) -> Route | None:
        """The first route serving ``path`` that takes ``model``, or ``None``."""
        for route in self.by_path.get(path, ()):
            if route.matches(model):
                return route
        return None
