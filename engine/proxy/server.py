"""Start-up: resolve the options, raise the descriptor limit, listen, and run the proxy app.

The configuration is resolved (routes file checked, mappings compiled, keys read from the
environment) before the server listens, so a mistake stops ``mapper serve`` with a located message
instead of failing the first request. The server is ``engine.proxy.front`` (aiohttp's low-level
server with the client limits), running the app through ``engine.proxy.asgi``, on uvloop when it
is installed (the ``fast`` extra).

Descriptors: the soft ``RLIMIT_NOFILE`` is raised to the hard limit at start-up (a default soft
limit of 1,024 is a few hundred streams), and the connection cap defaults to half of what is left
after a reserve, since every proxied request also holds an upstream socket.

``--workers N`` binds the socket once and forks N processes that share it, each with its own
event loop, app and upstream pool; they share a directory of metrics files so that ``/metrics``
reports the whole server whichever worker answers. A response store is opened once before
listening, so that an unwritable SQLite file or an unreachable Redis stops the command with its
message; each worker then opens its own connection.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any, Callable

from ..store import StoreConfig
from . import metrics
from .app import ProxyApp
from .config import ConfigError, ProxyConfig, ServeOptions, build_config
from .asgi import serve_until
from .front import Limits
from .logs import Redactor, configure_logging
from .upstream import redact_url

__all__ = ["connection_cap", "limits_of", "raise_descriptor_limit", "serve"]

LOGGER = logging.getLogger("mapper.proxy")
DESCRIPTOR_RESERVE = 128  # descriptors kept for the store, logs, the listening socket, DNS...
_BACKLOG = 2048


def event_loop() -> str:
    """uvloop when installed, else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def raise_descriptor_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_cap(descriptors: int) -> int:
    """The default connection cap: half the descriptors left after the reserve (client + upstream)."""
    return max(16, (descriptors - DESCRIPTOR_RESERVE) // 2)


def limits_of(options: ServeOptions, descriptors: int) -> Limits:
    """The client limits ``options`` ask for, the connection cap filled in."""
    return Limits(header_timeout=options.header_timeout,
                  keepalive_timeout=options.keepalive_timeout,
                  max_header_bytes=options.max_header_bytes,
                  max_connections=options.max_connections or connection_cap(descriptors))


def serve(options: ServeOptions) -> None:
    """Resolve ``options`` (raising ``MapperError`` on any mistake), log the routes, and serve."""
    if sys.version_info < (3, 11):  # asyncio.timeout and Task.cancelling() arrived in 3.11
        raise ConfigError("mapper serve needs Python 3.11 or later")
    config = build_config(options)
    configure_logging(Redactor(config.secrets()))
    if config.store is not None:
        asyncio.run(_check_store(config.store))
    descriptors = raise_descriptor_limit()
    limits = limits_of(options, descriptors)
    sock = _listen(options.host, options.port)
    _log_start(config, options, limits, descriptors)
    if options.workers > 1:
        _run_workers(options.workers, lambda: _run(config, sock, limits))
    else:
        _run(config, sock, limits)
    LOGGER.info("stopped")


def _listen(host: str, port: int) -> socket.socket:
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(_BACKLOG)
    sock.setblocking(False)
    return sock


def _run(config: ProxyConfig, sock: socket.socket, limits: Limits) -> None:
    """One process: an event loop serving ``sock`` until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve_until(ProxyApp(config), stop, sockets=[sock], limits=limits)

    if event_loop() == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def _run_workers(count: int, work: Callable[[], None]) -> None:
    """Fork ``count`` workers running ``work``; stop them all on SIGINT/SIGTERM or when one fails."""
    directory = tempfile.mkdtemp(prefix="mapper-metrics-")
    children: list[int] = []
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:  # a worker
                code = 0
                try:
                    metrics.use_multiprocess(directory)
                    work()
                except BaseException:  # noqa: BLE001 - a worker reports and exits, never returns
                    LOGGER.exception("worker failed")
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)
        _supervise(children, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _supervise(children: list[int], directory: str) -> None:
    def forward(signum: int, _frame: Any) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    from prometheus_client import multiprocess

    alive = set(children)
    while alive:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        alive.discard(pid)
        multiprocess.mark_process_dead(pid, directory)
        if os.waitstatus_to_exitcode(status) != 0 and alive:
            LOGGER.error("worker stopped; stopping the others", extra={"fields": {"pid": pid}})
            forward(signal.SIGTERM, None)


async def _check_store(store_config: StoreConfig) -> None:
    """Open the store once and close it; raises ``StoreError``."""
    store = store_config.open()
    try:
        await store.open()
    finally:
        await store.aclose()


def _log_start(config: ProxyConfig, options: ServeOptions, limits: Limits, descriptors: int) -> None:
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
                         "idle": route.timeouts.idle, "total": route.timeouts.total},
        })})
    holds_keys = any(route.api_key for route in config.router.routes)
    if holds_keys and not config.held_keys and not _loopback(options.host):
        LOGGER.warning("open upstream key", extra={"fields": {
            "detail": f"routes hold upstream keys and {options.host} is not a loopback address, "
                      "but no proxy keys are set: anyone who reaches the port spends the key "
                      "(set --proxy-key-env)"}})
    LOGGER.info("starting", extra={"fields": {
        "host": options.host, "port": options.port, "workers": options.workers, "auth": mode,
        "loop": event_loop(), "server": "aiohttp", "upstream_transport": config.transport,
        "max_body_bytes": config.max_body_bytes, "log_bodies": config.log_bodies,
        "header_timeout": limits.header_timeout, "keepalive_timeout": limits.keepalive_timeout,
        "max_header_bytes": limits.max_header_bytes, "max_connections": limits.max_connections,
        "descriptors": descriptors,
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
