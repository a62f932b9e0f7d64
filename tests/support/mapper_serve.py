"""``mapper serve`` as a user starts it, a real process on 127.0.0.1, for the real-client tests.

The real clients (Codex, the Vercel AI SDK, the openai npm SDK) are other processes and need a
listening port, and the claim under test is that they work through the command a user types, on
its defaults. So this runs ``python -m mapper.cli serve`` with only the flags a test names, waits
for ``/health``, and stops it with SIGINT; every wait is bounded. Its stderr (JSON log lines) goes
to a file rather than a pipe, so a chatty server can never block on a full pipe, and
``refusals()`` reads the requests it answered with an error, for assertion messages.

    with MapperServe(["--mapping", "openai-chat", "--upstream", upstream.base_url], tmp_path) as mapper:
        client = openai.OpenAI(base_url=mapper.base_url, api_key="k")
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class MapperServe:
    """One ``mapper serve`` process with ``args`` (plus ``--host``/``--port``); ``base_url`` ends in /v1."""

    def __init__(self, args: list[str], folder: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = folder / "mapper-serve.log"
        self.env = env
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        if self.port is None:
            raise RuntimeError("mapper serve is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def start(self) -> "MapperServe":
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            command = [sys.executable, "-m", "mapper.cli", "serve", *self.args,
                       "--host", "127.0.0.1", "--port", str(self.port)]
            with self.log_path.open("wb") as log:
                self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                 env=self.env)
            if self._wait_healthy():
                return self
        raise RuntimeError(f"mapper serve exited with {self._process.returncode}:\n"
                           f"{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def __enter__(self) -> "MapperServe":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_lines(self, since: int = 0) -> list[dict]:
        """The JSON lines logged so far, from line ``since`` on (a traceback line as {"text": line}).

        ``len(server.log_lines())`` before a step, passed as ``since`` after it, keeps a test to the
        lines of its own requests on a server that a module shares.
        """
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines()[since:]:
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"text": line})
        return lines

    def left_out(self, since: int = 0) -> set[str]:
        """What mapper left out of the requests it answered (their ``dropped`` log field)."""
        return {name for line in self.log_lines(since) if line.get("event") == "request"
                for name in line.get("dropped") or ()}

    def refusals(self) -> list[str]:
        """One line per request answered with an error status: status, path and mapper's reason."""
        return [f"{line['status']} {line.get('path')}: {line.get('error')}" for line in self.log_lines()
                if line.get("event") == "request" and line.get("status", 200) >= 400]

    def _wait_healthy(self) -> bool:
        """True once /health answers; False if the process exited; raises after START_TIMEOUT."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                if httpx.get(self.origin + "/health", timeout=0.5).status_code == 200:
                    return True
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mapper serve was not healthy within {START_TIMEOUT}s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
