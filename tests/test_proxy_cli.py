"""``mapper serve`` as users and the benchmark start it: a real process, flags, workers, stderr logs.

The command-line contract (``--mapping --upstream --api-key-env --host --port --workers``) is
relied on, so it is exercised as a subprocess: two workers, held keys, bodies logged, and every
line on stderr a JSON object without a key in it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from support.fake_upstream import FakeUpstream

UPSTREAM_KEY = "sk-cli-upstream-secret-1"
PROXY_KEY = "pk-cli-client-secret-2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mapper serve exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise AssertionError(f"mapper serve was not healthy within {timeout}s")


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate(timeout=5)
        raise AssertionError(f"mapper serve did not stop on SIGINT:\n{stderr}") from None
    return stderr


def _json_line(line: str, stderr: str) -> dict:
    try:
        return json.loads(line)
    except ValueError:
        raise AssertionError(f"not a JSON log line: {line!r}\n--- stderr:\n{stderr}") from None


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group")
def test_mapper_serve_with_workers_held_keys_and_json_logs() -> None:
    with FakeUpstream(quirks=["require_auth"], api_key=UPSTREAM_KEY) as upstream:
        port, origin = _free_port(), upstream.origin
        env = {**os.environ, "UP_KEY": UPSTREAM_KEY, "CLIENT_KEYS": PROXY_KEY}
        process = subprocess.Popen(
            [sys.executable, "-m", "mapper.cli", "serve", "--mapping", "openai-chat.yaml",
             "--upstream", upstream.origin + "/v1/v1", "--api-key-env", "UP_KEY",
             "--proxy-key-env", "CLIENT_KEYS", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2", "--log-bodies", "--read-timeout", "30"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/health", process)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=10) as client:
                allowed = [client.post("/responses", json={"model": "m", "input": f"hi {n}"},
                                       headers={"authorization": f"Bearer {PROXY_KEY}"}) for n in range(4)]
                refused = client.post("/responses", json={"model": "m", "input": "hi"},
                                      headers={"authorization": f"Bearer {UPSTREAM_KEY}"})
        finally:
            stderr = _stop(process)
    assert [response.status_code for response in allowed] == [200] * 4, stderr
    assert allowed[0].json()["output"][0]["content"][0]["text"] == "echo: hi 0"
    assert refused.status_code == 401, stderr
    assert upstream.requests[0].path == "/v1/chat/completions"  # the doubled /v1 was forgiven
    lines = [_json_line(line, stderr) for line in stderr.splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert "route" in events and "starting" in events
    route = next(line for line in lines if line["event"] == "route")
    assert route["upstream"] == origin + "/v1/chat/completions"
    assert route["upstream_key"] == "$UP_KEY"
    requests = [line for line in lines if line["event"] == "request" and line["path"] == "/v1/responses"]
    assert sorted(line["status"] for line in requests) == [200, 200, 200, 200, 401]
    assert all("request_body" in line for line in requests if line["status"] == 200)
    assert UPSTREAM_KEY not in stderr and PROXY_KEY not in stderr
    assert process.returncode == 0
