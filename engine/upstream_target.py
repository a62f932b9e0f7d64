"""Where an upstream request goes and how it carries the key: the mapping options a proxy honours.

A mapping converts bodies; it cannot move a request to another URL or header. Providers whose
addressing differs from OpenAI's (Azure OpenAI's deployments, ``api-version`` and ``api-key``
header) say what they need as **options**, which overlays, routes and ``--option`` can set like
any other, and the proxy (and anything else that sends requests) reads them through this module:

``auth_header``
    The header that carries the upstream key. ``authorization`` (the default) sends
    ``Authorization: Bearer KEY``; any other name sends the key alone under that name
    (``api-key: KEY`` for Azure) and no ``Authorization`` header.
``upstream_path``
    The path appended to the base URL instead of the API's standard one (``/chat/completions``,
    ``/responses``). ``{model}`` in it is replaced by the upstream request's ``model``, escaped for
    a path segment: ``/deployments/{model}/chat/completions``.
``upstream_query``
    A query string added to every upstream URL, after any query the base URL already has:
    ``api-version=2024-10-21``.

Absent options mean OpenAI's conventions. Everything here is pure and never puts the key in an
error message.
"""

from __future__ import annotations

import re
from typing import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from .types import Json

# Endpoints people paste instead of a base URL; trimmed off by ``base_url``.
_ENDPOINT_SUFFIXES = ("/chat/completions", "/responses", "/completions", "/models")
# the path of each API's endpoint under an OpenAI-style base URL (``…/v1``)
API_PATHS = {"openai.chat": "/chat/completions", "openai.responses": "/responses",
             "anthropic.messages": "/messages"}
DEFAULT_AUTH_HEADER = "authorization"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def base_url(url: str) -> str:
    """The OpenAI-style base URL for what a user typed.

    ``http://host:11434`` (no path) gets ``/v1``; a doubled ``/v1/v1`` becomes ``/v1``; a pasted
    endpoint (``…/v1/chat/completions``) loses its endpoint; trailing slashes go. Any other path is
    kept as given, since providers version differently (``/compatible-mode/v1``, ``/api/v3``,
    ``/v1beta/openai``). Raises ``ValueError`` for what is not an http(s) URL.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {redact_url(url)!r}")
    path = parts.path.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
            break
    while path.endswith("/v1/v1"):
        path = path[:-3]
    return urlunsplit((parts.scheme, parts.netloc, path or "/v1", parts.query, ""))


def redact_url(url: str) -> str:
    """The URL without credentials or query, which may carry keys, for logs and messages."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def endpoint_url(base: str, options: Mapping[str, Json], *, api: str, model: str | None = None) -> str:
    """The URL of ``api``'s endpoint for a request to ``model``.

    >>> azure = {"upstream_path": "/deployments/{model}/chat/completions",
    ...          "upstream_query": "api-version=2024-10-21"}
    >>> endpoint_url("https://r.openai.azure.com/openai", azure, api="openai.chat", model="gpt 4o")
    'https://r.openai.azure.com/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21'
    """
    path = options.get("upstream_path")
    if path is None:
        path = API_PATHS[api]
    elif not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"option upstream_path must be a path starting with '/', got {path!r}")
    if "{model}" in path:
        if not model:
            raise ValueError("option upstream_path names {model}, but the request has no model")
        path = path.replace("{model}", quote(str(model), safe=""))
    return _join(base, path, options)


def models_url(base: str, options: Mapping[str, Json]) -> str:
    """The URL of the model list under ``base`` (``upstream_path`` does not apply to it)."""
    return _join(base, "/models", options)


def auth_headers(options: Mapping[str, Json], api_key: str | None) -> dict[str, str]:
    """The header(s) that carry ``api_key`` upstream; none when there is no key."""
    name = options.get("auth_header") or DEFAULT_AUTH_HEADER
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        raise ValueError(f"option auth_header must be an HTTP header name, got {name!r}")
    if not api_key:
        return {}
    name = name.lower()
    if name == DEFAULT_AUTH_HEADER:
        return {name: f"Bearer {api_key}"}
    return {name: api_key}


def _join(base: str, path: str, options: Mapping[str, Json]) -> str:
    parts = urlsplit(base)
    query = parts.query
    extra = options.get("upstream_query")
    if extra is not None:
        if not isinstance(extra, str):
            raise ValueError(f"option upstream_query must be a query string, got {extra!r}")
        extra = extra.lstrip("?")
        query = f"{query}&{extra}" if query and extra else (query or extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, query, ""))
