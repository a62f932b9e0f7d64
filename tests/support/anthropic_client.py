"""The official ``anthropic`` SDK over real sockets, keeping every body it exchanged.

End-to-end tests want two views of one call: what the SDK made of it (its objects, its exceptions,
its stream accumulator) and what crossed the wire (to check a stream event by event with
``anthropic_invariants`` and a JSON body against ``schemas/anthropic/``). Sending each request twice,
once through the SDK and once raw, would compare two different answers (ids, signatures), so the
SDK's own HTTP client runs over ``RecordingTransport``: an ``httpx2.HTTPTransport`` whose response
bodies are copied as the SDK reads them. A streamed body is complete once the SDK's stream is closed.

anthropic 2.x speaks httpx2 (httpx's successor) and refuses plain httpx objects; it sends
``api_key`` as ``Authorization: Bearer``.

    client, wire = recording_client(proxy.origin)
    client.messages.create(...)
    check_anthropic_sse(wire.last.body)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import anthropic
import httpx2

Json = Any
TIMEOUT = 20.0


@dataclass
class Exchange:
    """One request the SDK sent and the answer it got; ``body`` grows while the SDK reads it."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)

    @property
    def request_json(self) -> Json:
        return json.loads(self.request_body) if self.request_body else None

    @property
    def json(self) -> Json:
        return json.loads(bytes(self.body))


class _Tee(httpx2.SyncByteStream):
    """A response stream that copies each piece into ``sink`` as it is read."""

    def __init__(self, stream: httpx2.SyncByteStream, sink: bytearray) -> None:
        self._stream, self._sink = stream, sink

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._stream:
            self._sink.extend(piece)
            yield piece

    def close(self) -> None:
        self._stream.close()


class RecordingTransport(httpx2.BaseTransport):
    """``httpx2.HTTPTransport`` that keeps every exchange in ``exchanges``, oldest first."""

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()
        self.exchanges: list[Exchange] = []

    @property
    def last(self) -> Exchange:
        if not self.exchanges:
            raise AssertionError("the SDK sent no request")
        return self.exchanges[-1]

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        response = self._inner.handle_request(request)
        exchange = Exchange(request.method, str(request.url), dict(request.headers), body,
                            response.status_code, dict(response.headers))
        self.exchanges.append(exchange)
        return httpx2.Response(response.status_code, headers=response.headers, request=request,
                               stream=_Tee(response.stream, exchange.body), extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()


def recording_client(origin: str, api_key: str = "sk-ant-client", max_retries: int = 0,
                     **options: Any) -> tuple[anthropic.Anthropic, RecordingTransport]:
    """An ``anthropic.Anthropic`` for the server at ``origin`` (no ``/v1``), and its recording transport."""
    transport = RecordingTransport()
    http_client = httpx2.Client(transport=transport, timeout=TIMEOUT)
    client = anthropic.Anthropic(api_key=api_key, base_url=origin, max_retries=max_retries,
                                 http_client=http_client, **options)
    return client, transport
