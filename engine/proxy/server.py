"""Start-up: resolve the options, then run the proxy app on uvicorn.

The configuration is resolved (routes file checked, mappings compiled, keys read from the
environment) before the server listens, so a mistake stops ``mapper serve`` with a located message
instead of failing the first request. uvloop and httptools are used when they are installed (the
``fast`` extra), plain asyncio and h11 otherwise.

``--workers N`` runs N processes, each with its own app and upstream pool. Workers are started by
uvicorn from an import string, so the options travel to them as JSON in ``MAPPER_SERVE_OPTIONS``
and each worker resolves them again (keys are read from its environment, never passed along).
A response store is opened once before listening, so that an unwritable SQLite file or an
unreachable Redis stops the command with its message; each worker then opens its own connection.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket
import sys
from typing import Any

import uvicorn

from ..store import StoreConfig
from .app import ProxyApp
from .config import OPTIONS_ENV, ConfigError, ProxyConfig, ServeOptions, build_config
from .logs import Redactor, configure_logging
from .upstream import redact_url

__all__ = ["serve", "uvicorn_config", "uvicorn_settings", "worker_app"]

LOGGER = logging.getLogger("mapper.proxy")


def event_loop() -> str:
    """uvloop when installed, else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def http_protocol() -> str:
    """httptools when installed, else h11."""
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def uvicorn_settings() -> dict[str, Any]:
    """The uvicorn settings the proxy runs with, whatever the app, host, port and workers."""
    # log_config=None: uvicorn's loggers get the proxy's JSON lines (logs.configure_logging);
    # access_log off: the proxy writes its own line per request; ws off: no websocket routes
    return {"loop": event_loop(), "http": http_protocol(), "ws": "none", "lifespan": "on",
            "log_config": None, "access_log": False, "server_header": False,
            "timeout_graceful_shutdown": 5}


def uvicorn_config(app: Any, *, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Config:
    """A one-process uvicorn configuration (also used by the tests' in-thread server)."""
    return uvicorn.Config(app, host=host, port=port, **uvicorn_settings())


def serve(options: ServeOptions) -> None:
    """Resolve ``options`` (raising ``MapperError`` on any mistake), log the routes, and serve."""
    if sys.version_info < (3, 11):  # asyncio.timeout and Task.cancelling() arrived in 3.11
        raise ConfigError("mapper serve needs Python 3.11 or later")
    config = build_config(options)
    configure_logging(Redactor(config.secrets()))
    if config.store is not None:
        asyncio.run(_check_store(config.store))
    _log_start(config, options)
    try:
        if options.workers > 1:
            os.environ[OPTIONS_ENV] = options.to_json()
            uvicorn.run("mapper.engine.proxy.server:worker_app", factory=True, host=options.host,
                        port=options.port, workers=options.workers, **uvicorn_settings())
        else:
            uvicorn.Server(uvicorn_config(ProxyApp(config), host=options.host,
                                          port=options.port)).run()
    except KeyboardInterrupt:
        # uvicorn has shut down gracefully and re-raises the Ctrl-C it captured: a normal end
        LOGGER.info("stopped")


def worker_app() -> ProxyApp:
    """The app of one ``--workers`` process, built from ``MAPPER_SERVE_OPTIONS``."""
    options = ServeOptions.from_json(os.environ[OPTIONS_ENV])
    config = build_config(options)
    configure_logging(Redactor(config.secrets()))
    return ProxyApp(config)


async def _check_store(store_config: StoreConfig) -> None:
    """Open the store once and close it; raises ``StoreError``."""
    store = store_config.open()
    try:
        await store.open()
    finally:
        await store.aclose()


def _log_start(config: ProxyConfig, options: ServeOptions) -> None:
    mode = "held-key" if config.held_keys else "pass-through"
    for route in config.router.routes:
        LOGGER.info("route", extra={"fields": _present({
            "route": route.name,
            "match": route.pattern.pattern if route.pattern else "(every model)",
            "serves": route.path,
            "mapping": f"{route.mapping.id} {route.mapping.version}",
            "upstream": redact_url(route.url_template),
            "model": route.model,
            "upstream_key": f"${route.api_key_env}" if route.api_key_env else None,
            "timeouts": {"connect": route.timeouts.connect, "read": route.timeouts.read,
                         "idle": route.timeouts.idle},
        })})
    holds_keys = any(route.api_key for route in config.router.routes)
    if holds_keys and not config.held_keys and not _loopback(options.host):
        LOGGER.warning("open upstream key", extra={"fields": {
            "detail": f"routes hold upstream keys and {options.host} is not a loopback address, "
                      "but no proxy keys are set: anyone who reaches the port spends the key "
                      "(set --proxy-key-env)"}})
    LOGGER.info("starting", extra={"fields": {
        "host": options.host, "port": options.port, "workers": options.workers, "auth": mode,
        "loop": event_loop(), "http": http_protocol(), "upstream_transport": config.transport,
        "max_body_bytes": config.max_body_bytes, "log_bodies": config.log_bodies,
        "store": config.store.display if config.store else None,
        "store_ttl": config.store.ttl if config.store else None}})


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return all(info[4][0] in ("127.0.0.1", "::1") or info[4][0].startswith("127.") for info in infos)
