"""Hostile clients and faulty upstreams: the server's limits, the total deadline, and what clients see.

Each case of issue 12, against the real server (``engine.proxy.front``) on 127.0.0.1, with raw
sockets where a well-behaved client library would not misbehave: a head over the header limit
(431), a head that never ends (408), idle and silent sockets, a descriptor limit lowered in a
subprocess (503 past the connection cap), an upstream that drips after its headers (the total
deadline: 504, or an error event mid-stream), credentials in the upstream URL, first frames that
cannot be read (502), and what the HTTP parser refuses (OpenAI JSON with an ``x-request-id``).
Every wait is bounded; timings are only checked against generous bounds that catch hangs.
"""

from __future__ import annotations

import base64
import os
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mapper.engine.proxy import ConfigError, ServeOptions, build_config
from mapper.engine.proxy.front import Limits
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer
from support.sse_reader import parse_sse_events
from support.upstream_replies import SseReply, sse_reply

REPO_ROOT = Path(__file__).resolve().parent.parent
RESPONSES = "/v1/responses"
FIRST_CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"},
                            "finish_reason": None}]}


def config_for(fake: FakeUpstream, **options: Any):
    options.setdefault("mapping", "openai-chat")
    options.setdefault("upstream", fake.base_url)
    env = options.pop("env", {})
    return build_config(ServeOptions(**options), env=env)


def exchange(port: int, data: bytes, timeout: float = 10.0, chunks: int = 1) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` (in ``chunks`` pieces) on a fresh connection; the response, read to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        step = max(1, len(data) // chunks)
        try:
            for start in range(0, len(data), step):
                sock.sendall(data[start:start + step])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: read that answer
        return read_response(sock)


def read_response(sock: socket.socket, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"closed before a response head: {received!r}")
        received += piece
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return status, headers, body


def assert_openai_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"req_[0-9a-f]{24}", headers["x-request-id"])
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


# -- header limits and timeouts ------------------------------------------------------------------


def test_a_head_over_the_header_limit_is_431_and_health_still_answers(fake: FakeUpstream) -> None:
    with ProxyServer(config_for(fake), limits=Limits(max_header_bytes=4096)) as proxy:
        one_big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n"
        error = assert_openai_error(*exchange(proxy.port, one_big), 431)
        assert error["code"] == "headers_too_large"
        many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-H%d: %s\r\n" % (n, b"b" * 200) for n in range(40)) + b"\r\n"
        assert_openai_error(*exchange(proxy.port, many), 431)
        # 4 MB of a header that never ends, sent in pieces: refused once past the limit
        endless = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"c" * (4 << 20)
        assert_openai_error(*exchange(proxy.port, endless, chunks=64), 431)
        assert httpx.get(proxy.origin + "/health", timeout=5).status_code == 200


def test_a_head_that_does_not_end_in_time_is_408(fake: FakeUpstream) -> None:
    with ProxyServer(config_for(fake), limits=Limits(header_timeout=0.3)) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # a slow-loris sender
            started = time.monotonic()
            status, headers, body = read_response(sock)
            assert time.monotonic() - started < 8
            error = assert_openai_error(status, headers, body, 408)
            assert error["code"] == "header_timeout"
            assert closed_by_server(sock, 5)


def test_a_body_that_stops_arriving_is_408(fake: FakeUpstream) -> None:
    with ProxyServer(config_for(fake), limits=Limits(header_timeout=0.3)) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                         b'{"model": "fake-model", ')  # then nothing more
            error = assert_openai_error(*read_response(sock), 408)
            assert error["code"] == "body_timeout"
    assert not fake.requests  # nothing went upstream


def test_a_client_that_stops_reading_is_dropped_and_the_upstream_cancelled(fake: FakeUpstream) -> None:
    first = f"data: {orjson.dumps(FIRST_CHUNK).decode()}\n\n"
    filler = {**FIRST_CHUNK, "choices": [{"index": 0, "delta": {"content": "x" * 4000},
                                          "finish_reason": None}]}
    frames = (first, *[f"data: {orjson.dumps(filler).decode()}\n\n"] * 20_000)  # ~80 MB
    fake.expect("/v1/chat/completions", SseReply(frames))
    with ProxyServer(config_for(fake), limits=Limits(keepalive_timeout=0.5)) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            body = b'{"model": "fake-model", "input": "hi", "stream": true}'
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            deadline = time.monotonic() + 15  # then read nothing: the proxy must give up on us
            while not fake.disconnects and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake.disconnects, "the upstream request was not cancelled"
            assert closed_by_server(sock, 5)  # reset: what was still queued for us is dropped


def test_idle_connections_are_closed(fake: FakeUpstream) -> None:
    with ProxyServer(config_for(fake), limits=Limits(keepalive_timeout=0.3)) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as silent:
            assert closed_by_server(silent, 8)  # never sent a byte
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as kept:
            kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(kept)[0] == 200
            assert closed_by_server(kept, 8)  # idle after its answer


def test_the_connection_cap_answers_503_at_a_low_descriptor_limit(fake: FakeUpstream,
                                                                   tmp_path: Path) -> None:
    """Silent sockets past the cap get 503 and are closed; the server never runs out of descriptors."""
    port = _free_port()

    def low_limit() -> None:  # in the child: soft 200, hard 300 (the server raises soft to 300)
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 300))

    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "mapper.cli", "serve", "-m", "openai-chat", "--upstream",
             fake.base_url, "--port", str(port), "--keepalive-timeout", "60"],
            stdout=output, stderr=subprocess.STDOUT, preexec_fn=low_limit, cwd=REPO_ROOT.parent,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT.parent)})
    sockets: list[socket.socket] = []
    try:
        _wait_for(port, server, log)
        start = next(orjson.loads(line) for line in log.read_text().splitlines()
                     if '"starting"' in line)
        assert start["descriptors"] == 300
        cap = start["max_connections"]
        assert cap == (300 - 128) // 2
        for _ in range(cap + 20):  # silent sockets, more than the cap
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        status, headers, body = read_response(sockets[-1])  # refused at once, without a request
        error = assert_openai_error(status, headers, body, 503)
        assert error["code"] == "too_many_connections"
        assert_openai_error(*exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), 503)
        for sock in sockets:
            sock.close()
        sockets.clear()
        assert _health_within(port, 10) == 200
        assert server.poll() is None
        assert "connections over the limit" in log.read_text()
    finally:
        for sock in sockets:
            sock.close()
        server.terminate()
        server.wait(10)


# -- the total deadline ----------------------------------------------------------------------------


def test_an_upstream_dripping_its_json_hits_the_total_deadline_504(fake: FakeUpstream) -> None:
    drip = SseReply(tuple(bytes([byte]) for byte in b'{"id": "chatcmpl-1"'), delay=0.25,
                    headers=(("content-type", "application/json"),))
    fake.expect("/v1/chat/completions", drip)
    with ProxyServer(config_for(fake, total_timeout=1.0, idle_timeout=30)) as proxy:
        started = time.monotonic()
        response = httpx.post(proxy.origin + RESPONSES, json={"model": "fake-model", "input": "hi"},
                              timeout=20)
        assert time.monotonic() - started < 10
    assert response.status_code == 504
    assert "total timeout" in response.json()["error"]["message"]
    assert response.headers["x-request-id"]


def test_a_stream_dripping_after_its_first_frame_ends_in_an_error_event(fake: FakeUpstream) -> None:
    first = f"data: {orjson.dumps(FIRST_CHUNK).decode()}\n\n"
    fake.expect("/v1/chat/completions", SseReply((first, *": dripping\n"), delay=0.25))
    with ProxyServer(config_for(fake, total_timeout=1.0, idle_timeout=30)) as proxy:
        with httpx.stream("POST", proxy.origin + RESPONSES, timeout=20,
                          json={"model": "fake-model", "input": "hi", "stream": True}) as response:
            assert response.status_code == 200
            events = parse_sse_events(response.read())
    kinds = [event["type"] for event in events]
    assert kinds[0] == "response.created"
    assert kinds[-2:] == ["error", "response.failed"]
    assert "total timeout" in events[-2]["message"]


def test_a_chat_client_gets_an_error_frame_when_the_deadline_passes_mid_stream() -> None:
    created = {"type": "response.created", "sequence_number": 0,
               "response": {"id": "resp_1", "object": "response", "created_at": 1,
                            "status": "in_progress", "model": "fake-model", "output": []}}
    first = f"event: response.created\ndata: {orjson.dumps(created).decode()}\n\n"
    with FakeUpstream(quirks=["no_chat_endpoint"]) as upstream:
        upstream.expect("/v1/responses", SseReply((first, *": dripping\n"), delay=0.25))
        config = config_for(upstream, mapping="openai-responses", total_timeout=1.0)
        with ProxyServer(config) as proxy:
            with httpx.stream("POST", proxy.origin + "/v1/chat/completions", timeout=20,
                              json={"model": "fake-model", "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]}) as response:
                assert response.status_code == 200
                body = response.read()
    frames = [orjson.loads(line[6:]) for line in body.decode().splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    assert "total timeout" in frames[-1]["error"]["message"]


# -- upstream URL with credentials -------------------------------------------------------------------


def test_credentials_in_the_upstream_url_go_as_basic_auth_never_a_500(fake: FakeUpstream) -> None:
    with_credentials = fake.base_url.replace("http://", "http://bench%40user:s3cret@")
    config = config_for(fake, upstream=with_credentials)
    assert "s3cret" in config.secrets()
    with ProxyServer(config) as proxy:
        response = httpx.post(proxy.origin + RESPONSES, json={"model": "fake-model", "input": "hi"},
                              headers={"authorization": "Bearer client-key"}, timeout=10)
    assert response.status_code == 200, response.text
    sent = fake.last.headers["authorization"]
    assert sent == "Basic " + base64.b64encode(b"bench@user:s3cret").decode()


def test_credentials_in_the_url_and_a_held_key_are_refused_at_start_up(fake: FakeUpstream) -> None:
    with pytest.raises(ConfigError, match="carries credentials"):
        config_for(fake, upstream=fake.base_url.replace("http://", "http://u:p@"),
                   api_key_env="KEY", env={"KEY": "sk-held"})


# -- first frames that cannot be read ----------------------------------------------------------------


@pytest.mark.parametrize("frame", [b"data: {not json\n\n", b"data: \xff\xfe\xfd\n\n"],
                         ids=["bad-json", "not-utf8"])
def test_an_unreadable_first_frame_is_a_502(fake: FakeUpstream, frame: bytes) -> None:
    fake.expect("/v1/chat/completions", sse_reply([frame]))
    with ProxyServer(config_for(fake)) as proxy:
        response = httpx.post(proxy.origin + RESPONSES, timeout=10,
                              json={"model": "fake-model", "input": "hi", "stream": True})
    assert response.status_code == 502
    assert response.headers["x-request-id"]
    assert response.json()["error"]["type"] == "server_error"


# -- what the HTTP parser refuses ---------------------------------------------------------------


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /" + b"a" * (65 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    (b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"FOO /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400),
], ids=["url-over-64KiB", "invalid-method", "unknown-method", "bad-version", "tls-on-http"])
def test_what_the_parser_refuses_is_openai_json_with_a_request_id(fake: FakeUpstream,
                                                                 request_bytes: bytes,
                                                                 status: int) -> None:
    with ProxyServer(config_for(fake)) as proxy:
        assert_openai_error(*exchange(proxy.port, request_bytes), status)


def test_http10_and_head_requests_are_framed_right(fake: FakeUpstream) -> None:
    """The server writes its answers itself: an HTTP/1.0 client gets its connection closed, a HEAD
    request a head without a body, and a keep-alive connection carries the next request."""
    with ProxyServer(config_for(fake)) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            status, headers, body = read_response(sock)
            assert (status, body, headers["connection"]) == (200, b'{"status":"ok"}', "close")
            assert closed_by_server(sock, 5)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(sock, head_only=True)
            assert (status, body) == (405, b"") and int(headers["content-length"]) > 0
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
            status, headers, body = read_response(sock)
            assert (status, body) == (200, b'{"status":"ok"}')
            assert headers["date"] and "connection" not in headers


# -- helpers -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, server: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mapper serve exited:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"mapper serve did not listen within {timeout}s:\n{log.read_text()}")


def _health_within(port: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    status = 0
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
        except httpx.HTTPError:
            status = 0
        if status == 200:
            return status
        time.sleep(0.1)
    return status
