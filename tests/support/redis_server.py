"""A real ``redis-server`` on 127.0.0.1, a free port and a temporary folder, for the store's tests.

Started and stopped with bounded waits; no persistence (``--save ''``, no AOF), so nothing outlives
the test run. When ``redis-server`` is not installed, ``start`` raises with a message that says
how to install it; the ``redis_url`` fixture (conftest) then skips, or fails under CI.

    with RedisServer(tmp_path) as redis:
        url = redis.url          # redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MISSING = ("redis-server is not installed, so the Redis store cannot be tested: install it "
           "(Debian: apt-get install -y redis-server; .ci/run does this)")


class RedisServer:
    """One ``redis-server`` process; ``url`` once started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(MISSING)
        for _ in range(3):  # a free port can be taken between the probe and the start
            self.port = _free_port()
            self._process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
                 "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start within {START_TIMEOUT}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()

    def _wait_ready(self) -> bool:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass  # not listening yet
            time.sleep(0.02)
        return False

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
