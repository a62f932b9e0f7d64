"""The Codex CLI (npm ``@openai/codex``) run hermetically against a Responses endpoint.

Its ``config.toml`` is the one README.md's *Codex CLI* section tells users to write, copied
verbatim into a temporary ``CODEX_HOME`` and checked with ``--strict-config``: a model provider
with ``wire_api = "responses"`` and ``env_key`` naming a variable that holds a dummy key, so no
login is involved. What a test must change goes on the command line (``-c``), never into the file:
the provider's ``base_url`` (the server under test), the model, no retries (a refusal shows at
once), no sandbox and no approvals (the commands are the test's own, run in a temporary folder;
what is under test is the protocol, not Codex's sandbox), and nothing that reaches past 127.0.0.1
(the plugin marketplace sync and analytics would).

``codex exec --json`` prints one JSON event per line (thread.started, turn.started, item.*,
turn.completed or turn.failed); ``CodexRun`` keeps them with the exit code and stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .real_clients import require_npm_package

README = Path(__file__).resolve().parents[2] / "README.md"
RUN_TIMEOUT = 120.0  # seconds for one `codex exec`; a scripted task takes a few

Json = Any


def readme_config() -> str:
    """The first ``toml`` block of README.md's *Codex CLI* section."""
    section = README.read_text().split("\n### Codex CLI\n", 1)[-1].split("\n#", 1)[0]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    if match is None:
        raise AssertionError("README.md has no toml block under '### Codex CLI'")
    return match.group(1)


def overrides(provider: str, base_url: str, model: str) -> list[str]:
    """The ``-c``/``-m`` flags that point the README's config at the server under test."""
    settings = {
        f"model_providers.{provider}.base_url": json.dumps(base_url),
        f"model_providers.{provider}.request_max_retries": "0",
        f"model_providers.{provider}.stream_max_retries": "0",
        "approval_policy": '"never"',
        "sandbox_mode": '"danger-full-access"',
        "features.plugins": "false",  # the plugin marketplace sync reaches github.com
        "analytics.enabled": "false",
    }
    return ["-m", model, *(flag for key, value in settings.items() for flag in ("-c", f"{key}={value}"))]


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
    config = readme_config()
    (home / "config.toml").write_text(config)
    settings = tomllib.loads(config)
    provider = settings["model_provider"]
    key_env = settings["model_providers"][provider]["env_key"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home),
           key_env: "sk-codex-dummy", "NO_COLOR": "1"}
    command = [shutil.which("node") or "node", str(script), "exec", "--json", "--strict-config",
               "--skip-git-repo-check", "--cd", str(work), *overrides(provider, base_url, model), task]
    done = subprocess.run(command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"type": "(not JSON)", "text": line})
    return CodexRun(done.returncode, events, done.stderr)
