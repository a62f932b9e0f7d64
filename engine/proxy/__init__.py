"""The HTTP proxy behind ``mapper serve``: Responses clients in front of Chat upstreams, and back.

    app.py         the ASGI app: paths, auth, body, routing, conversion, error answers
    exchange.py    one request's upstream exchange: held status, relayed errors, streams
    upstream.py    the pooled httpx client, its transport, timeouts and base URLs
    routes.py      routes and matching by path and model name
    config.py      ``mapper serve`` options, the routes file and its schema, keys from the env
    auth.py        pass-through and held-key modes
    disconnect.py  a client hang-up cancels the upstream request
    models.py      GET /v1/models
    stored.py      the response store's use: chained turns, kept answers, GET/DELETE endpoints
    logs.py        one JSON line per request; redaction of keys
    metrics.py     Prometheus metrics (/metrics)
    http.py        ASGI plumbing and OpenAI error bodies
    front.py       the HTTP server: aiohttp's low-level server and the client limits
    asgi.py        the ASGI app on that server, answers written as bytes; the run loop
    server.py      start-up: descriptors, listening socket, workers

Import ``ProxyApp`` and ``build_config`` from here; the modules are internal.
"""

from .app import ProxyApp
from .config import ConfigError, ProxyConfig, ServeOptions, build_config

__all__ = ["ConfigError", "ProxyApp", "ProxyConfig", "ServeOptions", "build_config"]
