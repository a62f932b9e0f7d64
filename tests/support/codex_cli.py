"""The Codex CLI (npm ``@openai/codex``) run hermetically against a Responses endpoint.

Each run gets its own ``CODEX_HOME`` holding a ``config.toml`` with one model provider: the
endpoint under test as ``base_url``, ``wire_api = "responses"`` and ``env_key`` naming a variable
that holds a dummy key, so no login is involved. Nothing reaches past 127.0.0.1: the plugin
marketplace sync and analytics, which would, are turned off. The sandbox is off and approvals
are never asked for, because the commands run are the test's own, in a temporary folder; what
is under test is the protocol, not Codex's sandbox. Retries are off, so a refusal shows at once.

``codex exec --json`` prints one JSON event per line (thread.started, turn.started, item.*,
turn.completed or turn.failed); ``CodexRun`` keeps them with the exit code and stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .real_clients import require_npm_package

KEY_ENV = "MAPPER_CODEX_KEY"
RUN_TIMEOUT = 120.0  # seconds for one `codex exec`; a scripted task takes a few

Json = Any

CONFIG = """\
model = "{model}"
model_provider = "mapper"
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.mapper]
name = "mapper"
base_url = "{base_url}"
env_key = "{key_env}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

# Both would reach the internet: the plugin marketplace sync and usage analytics.
[features]
plugins = false

[analytics]
enabled = false
"""


@dataclass(frozen=True, slots=True)
class CodexRun:
    """What one ``codex exec --json`` printed."""

    returncode: int
    events: list[Json]
    stderr: str

    def items(self, item_type: str) -> list[Json]:
        """The completed items of one type (``command_execution``, ``agent_message``, ``file_change`` …)."""
        return [event["item"] for event in self.events
                if event.get("type") == "item.completed" and event["item"].get("type") == item_type]

    def describe(self) -> str:
        """Everything printed, for assertion messages."""
        events = "\n".join(json.dumps(event)[:1500] for event in self.events)
        return f"exit {self.returncode}\n--- events:\n{events}\n--- stderr:\n{self.stderr[-3000:]}"


def codex_script() -> Path:
    """The CLI's entry script at the pinned version (skips, or fails under CI, when missing)."""
    return require_npm_package("@openai/codex") / "bin" / "codex.js"


def run_codex(task: str, base_url: str, folder: Path, model: str = "fake-model") -> CodexRun:
    """Run ``codex exec --json task`` in ``folder / "work"`` with its home in ``folder / "codex-home"``."""
    script = codex_script()
    home, work = folder / "codex-home", folder / "work"
    home.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(CONFIG.format(model=model, base_url=base_url, key_env=KEY_ENV))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home),
           KEY_ENV: "sk-codex-dummy", "NO_COLOR": "1"}
    command = [shutil.which("node") or "node", str(script), "exec", "--json", "--strict-config", "--skip-git-repo-check",
               "--cd", str(work), task]
    done = subprocess.run(command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"type": "(not JSON)", "text": line})
    return CodexRun(done.returncode, events, done.stderr)
