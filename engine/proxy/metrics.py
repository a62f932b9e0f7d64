"""Prometheus metrics of the proxy, served at ``GET /metrics`` in the text exposition format.

    mapper_requests_total{route,status,stream}        every answered request
    mapper_time_to_first_byte_seconds{stream}          from the request to the first byte sent
    mapper_upstream_latency_seconds{route}             from sending upstream to its response head
    mapper_tokens_total{route,kind}                    usage the upstreams reported (input, output)
    mapper_active_streams                              streamed answers in progress
    mapper_refusals_total{code}                        answers decided before any upstream call
                                                       (401, 404, 413, 431, 503...), by status
    mapper_upstream_errors_total{kind}                 upstream failures: unreachable, timeout,
                                                       bad answer, broken mid-body, an HTTP status
    mapper_store_operations_total{operation,outcome}   response store reads, writes, deletes

Cheap on the hot path: a request costs one call (``observe``) that looks its labelled children up in
plain dicts (prometheus_client's ``labels()`` validates and locks on every call) and increments
them. With ``--workers N`` the workers share a directory of prometheus_client's multiprocess files
(``use_multiprocess``), so a scrape of any worker reports the whole server.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, TypeVar

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, values)

__all__ = ["CONTENT_TYPE", "CountedStore", "Metrics", "counted", "current", "exposition",
           "refused", "stream_started", "upstream_error", "use_multiprocess"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
T = TypeVar("T")
# time to first byte and upstream latency: from a cached answer (ms) to a long prompt (minutes)
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0, 120.0, 300.0)


class Metrics:
    """The proxy's metrics in one registry; ``current()`` is the process's."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("mapper_requests", "Requests answered, by route, status and "
                                "whether the answer was streamed.", ("route", "status", "stream"),
                                registry=reg)
        self.ttfb = Histogram("mapper_time_to_first_byte_seconds", "From the request's arrival to "
                              "the first byte of the answer.", ("stream",), buckets=_BUCKETS,
                              registry=reg)
        self.upstream_latency = Histogram("mapper_upstream_latency_seconds", "From sending the "
                                          "request upstream to the upstream's response head.",
                                          ("route",), buckets=_BUCKETS, registry=reg)
        self.tokens = Counter("mapper_tokens", "Tokens the upstreams reported, by route and kind "
                              "(input, output).", ("route", "kind"), registry=reg)
        self.active_streams = Gauge("mapper_active_streams", "Streamed answers in progress.",
                                    registry=reg, multiprocess_mode="livesum")
        self.refusals = Counter("mapper_refusals", "Answers decided before any upstream call, by "
                                "HTTP status.", ("code",), registry=reg)
        self.upstream_errors = Counter("mapper_upstream_errors", "Upstream failures by kind.",
                                       ("kind",), registry=reg)
        self.store_operations = Counter("mapper_store_operations", "Response store operations by "
                                        "operation and outcome.", ("operation", "outcome"),
                                        registry=reg)
        self._children: dict[Any, Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe(self, route: str | None, status: int | None, stream: bool | None,
                started: float, first_byte_at: float | None, upstream_at: float | None,
                upstream_sent: float | None, tokens: dict[str, int] | None) -> None:
        """One answered request (the app calls this once, at its end)."""
        child = self.child
        route = route or "-"
        streamed = "true" if stream else "false"
        child(self.requests, route, str(status or 0), streamed).inc()
        if first_byte_at is not None:
            child(self.ttfb, streamed).observe(first_byte_at - started)
        if upstream_at is not None and upstream_sent is not None:
            child(self.upstream_latency, route).observe(upstream_at - upstream_sent)
        if tokens:
            for kind in ("input", "output"):
                count = tokens.get(kind)
                if count:
                    child(self.tokens, route, kind).inc(count)


_current = Metrics()


def current() -> Metrics:
    """The metrics of this process."""
    return _current


def use_multiprocess(directory: str) -> None:
    """Share figures with the other workers through ``directory`` (before any request)."""
    global _current
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()
    _current = Metrics(CollectorRegistry(auto_describe=True))


def exposition() -> bytes:
    """The text format of every metric (all workers' when they share a directory)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and values.ValueClass is not values.MutexValue:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)
    return generate_latest(_current.registry)


def refused(status: int) -> None:
    """An answer decided before any upstream call."""
    metrics = _current
    metrics.child(metrics.refusals, str(status)).inc()


def upstream_error(kind: str) -> None:
    metrics = _current
    metrics.child(metrics.upstream_errors, kind).inc()


async def counted(operation: str, work: Awaitable[T]) -> T:
    """Await a store operation, counting it with its outcome."""
    metrics = _current
    try:
        result = await work
    except Exception:
        metrics.child(metrics.store_operations, operation, "error").inc()
        raise
    metrics.child(metrics.store_operations, operation, "ok").inc()
    return result


def stream_started() -> Callable[[], None]:
    """Count a stream as active; the returned function ends it (call once)."""
    gauge = _current.active_streams
    gauge.inc()
    return gauge.dec


class CountedStore:
    """A response store whose reads, writes and deletes are counted.

    Every other attribute is the store's own (``open``, ``aclose``, and whatever the store grows),
    so the wrapper never hides a method; reads (``get``, ``find_*``), ``put`` and ``delete`` are
    counted under their own names.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if name not in ("get", "put", "delete") and not name.startswith("find"):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await counted(name, attribute(*args, **kwargs))
        return call
