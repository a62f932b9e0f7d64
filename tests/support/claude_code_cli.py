"""The Claude Code CLI (npm ``@anthropic-ai/claude-code``) run hermetically against a Messages endpoint.

The npm package is a thin wrapper around a native executable (``@anthropic-ai/claude-code-linux-x64``
and its siblings, one per platform); its postinstall links the executable to ``bin/claude.exe``.
It needs nothing from the network at run time (measured: /work/wt/claude-code-findings.md).

One run is ``claude -p TASK --output-format json --allowedTools Bash`` in a fresh working folder:

- ``ANTHROPIC_BASE_URL`` is the server's origin (the CLI appends ``/v1/messages?beta=true``) and
  ``ANTHROPIC_API_KEY`` a dummy key, which the CLI sends as ``x-api-key``: no login, no prompt.
- Its state goes to a temporary ``CLAUDE_CONFIG_DIR`` and ``HOME``, never the user's.
- ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` stops its telemetry and feature-flag calls; the
  proxy variables point at a closed port on 127.0.0.1, so anything else that tried to leave the
  machine would fail at once instead of reaching the internet (``NO_PROXY`` keeps 127.0.0.1 direct).
- ``--allowedTools Bash`` lets the scripted Bash calls run without a prompt (it works as root,
  where ``--dangerously-skip-permissions`` is refused); ``--max-turns`` bounds a tool loop that
  never ends.

``--output-format json`` prints one JSON object (``type: "result"``, ``subtype``, ``is_error``,
``result``, ``num_turns``, ``permission_denials``, ...); ``ClaudeRun`` keeps it with the exit code
and both outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .real_clients import require_npm_package, unavailable

PACKAGE = "@anthropic-ai/claude-code"
RUN_TIMEOUT = 120.0  # seconds for one `claude -p`; a scripted two-turn task takes about two
MAX_TURNS = 6  # a scripted task needs two or three; more means the model loops
CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens there on a test machine

Json = Any


@dataclass(frozen=True, slots=True)
class ClaudeRun:
    """What one ``claude -p --output-format json`` printed."""

    returncode: int
    result: Json  # the parsed JSON object, or None when stdout held none
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        """Exit 0 and a result of subtype ``success`` that is not an error."""
        result = self.result or {}
        return self.returncode == 0 and result.get("subtype") == "success" and result.get("is_error") is False

    def describe(self) -> str:
        """Everything printed, for assertion messages."""
        return f"exit {self.returncode}\n--- stdout:\n{self.stdout[-4000:]}\n--- stderr:\n{self.stderr[-3000:]}"


def claude_executable() -> Path:
    """The native ``claude`` at the pinned version (skips, or fails under CI, when missing).

    ``bin/claude.exe`` is where the postinstall links it; should an npm skip install scripts, the
    platform package's own copy is taken instead.
    """
    folder = require_npm_package(PACKAGE)
    linked = folder / "bin" / "claude.exe"
    platform = folder.parent / "claude-code-linux-x64" / "claude"
    for candidate in (linked, platform):
        if candidate.is_file() and os.access(candidate, os.X_OK) and candidate.stat().st_size > 1_000_000:
            return candidate
    unavailable(f"{PACKAGE}'s native executable is missing (neither {linked} nor {platform}): "
                "run npm ci --prefix tests/clients on linux-x64")


def claude_environment(base_url: str, folder: Path) -> dict[str, str]:
    """The whole environment of one run: nothing of the caller's but ``PATH``."""
    home, config = folder / "home", folder / "claude-config"
    home.mkdir(parents=True, exist_ok=True)
    config.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(config),
        "TERM": "dumb",
        "NO_COLOR": "1",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-mapper-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HTTPS_PROXY": CLOSED_PORT,
        "HTTP_PROXY": CLOSED_PORT,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def run_claude(task: str, base_url: str, folder: Path, model: str = "fake-model",
               env: dict[str, str] | None = None) -> ClaudeRun:
    """Run ``claude -p task`` in ``folder / "work"`` against ``base_url`` (an origin, without ``/v1``).

    ``env`` adds variables to ``claude_environment``'s (a feature switch such as
    ``CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY``).
    """
    executable = claude_executable()
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    command = [str(executable), "-p", task, "--output-format", "json", "--allowedTools", "Bash",
               "--model", model, "--max-turns", str(MAX_TURNS)]
    environment = {**claude_environment(base_url, folder), **(env or {})}
    done = subprocess.run(command, cwd=work, env=environment, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return ClaudeRun(done.returncode, _last_json(done.stdout), done.stdout, done.stderr)


def _last_json(stdout: str) -> Json:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None
