"""A scripted model for agent clients such as Codex: a plan of tool calls, then an answer.

The toy model (``toy_model``) calls a tool once when the user names it; an agent client needs more:
it sends the task, runs every tool call the model makes, sends the output back, and repeats until
the model answers in text. ``AgentPlan`` plays that model over Chat Completions or the Responses
API (where a ``function_call_output`` item is a tool result). Which step comes next is read off the
request itself (the tool results after the last user message), so the plan keeps no state: it
answers the same whether the client resends the whole history or a proxy rebuilds it from a
response store, and a retried request gets the same answer.

A step is a ``Shell`` command, run through whichever shell tool the client offers, found by name
with the arguments that tool takes (Codex offers ``exec_command`` with ``cmd``; older builds
``shell_command`` or ``shell``; Claude Code ``Bash`` with ``command`` and ``description``), a
``Patch`` for Codex's freeform ``apply_patch`` tool (a function taking ``input`` once mapper has
turned it into a chat tool), a ``Namespaced`` call of a tool inside one of the client's
``namespace`` groups, or a ``Function`` call of a tool the client registered under that name. A
request that does not offer the tool a step needs gets a text answer naming the tools it did
offer, so a test that expected the step to run fails with that in its message.

    plan = AgentPlan((Shell("printf hi > note.txt"), Shell("cat note.txt")), final="Read: {last_line}")
    with FakeUpstream(chat_model=plan.answer) as upstream: ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from .request_reading import content_text, request_messages
from .toy_model import Answer, ToolCall, split_words

Json = Any

# shell tool name → how that tool takes a command line
SHELL_TOOLS: dict[str, Callable[[str], Json]] = {
    "exec_command": lambda command: {"cmd": command},
    "shell_command": lambda command: {"command": command},
    "shell": lambda command: {"command": ["bash", "-lc", command]},
    # Claude Code's tool: `description` is optional in its schema, but the model is told to fill it
    "Bash": lambda command: {"command": command, "description": "Run a step of the scripted plan"},
}


@dataclass(frozen=True, slots=True)
class Shell:
    """Run ``command`` through the client's shell tool."""

    command: str

    def call(self, offered: set[str]) -> tuple[str, Json] | None:
        name = next((name for name in SHELL_TOOLS if name in offered), None)
        return (name, SHELL_TOOLS[name](self.command)) if name else None


@dataclass(frozen=True, slots=True)
class Patch:
    """Apply ``patch`` (Codex's patch format) through the freeform ``apply_patch`` tool."""

    patch: str

    def call(self, offered: set[str]) -> tuple[str, Json] | None:
        return ("apply_patch", {"input": self.patch}) if "apply_patch" in offered else None


@dataclass(frozen=True, slots=True)
class Namespaced:
    """Call ``name`` of the client's ``namespace`` tool group with ``arguments``.

    A chat upstream sees a namespace's tools as plain functions under qualified names; the plan
    takes the shortest offered name that starts with the namespace and ends with the tool's name,
    so it does not depend on how the proxy joins the two.
    """

    namespace: str
    name: str
    arguments: Json

    def call(self, offered: set[str]) -> tuple[str, Json] | None:
        qualified = sorted((n for n in offered if n.startswith(self.namespace) and n.endswith(self.name)
                            and n != self.name), key=len)
        return (qualified[0], self.arguments) if qualified else None


@dataclass(frozen=True, slots=True)
class Function:
    """Call the function tool ``name`` with ``arguments``."""

    name: str
    arguments: Json

    def call(self, offered: set[str]) -> tuple[str, Json] | None:
        return (self.name, self.arguments) if self.name in offered else None


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """Make one call per turn, ``steps`` in order, then answer ``final``.

    ``final`` is formatted with ``output`` (the text of the last tool result) and ``last_line``
    (its last non-empty line), so the answer proves that the output made the round trip through
    the client and the proxy.
    """

    steps: tuple[Shell | Patch | Namespaced | Function, ...]
    final: str = "Done: {last_line}"

    def answer(self, body: Json, reasoning: bool = False) -> Answer:
        """The next step for a chat or Responses request: one tool call, or the final text."""
        messages = request_messages(body, tool_outputs=True)
        outputs = tool_outputs_since_user(messages)
        prompt_words = sum(len(content_text(m.get("content")).split()) for m in messages)
        if len(outputs) >= len(self.steps):
            output = outputs[-1].strip() if outputs else ""
            last_line = output.splitlines()[-1] if output else ""
            return _text(self.final.format(output=output, last_line=last_line), prompt_words, reasoning)
        step = len(outputs)
        offered = function_names(body)
        call = self.steps[step].call(offered)
        if call is None:
            return _text(f"scripted model: step {step + 1} ({self.steps[step]}) needs a tool that is not "
                         f"among the offered tools {sorted(offered)}", prompt_words)
        name, arguments = call
        # call ids must stay unique across the whole conversation, not only within one answer
        calls = (ToolCall(f"call_step_{step + 1}", name, json.dumps(arguments)),)
        return Answer((), calls, _thoughts(step, reasoning), False, prompt_words)


def _text(text: str, prompt_words: int, reasoning: bool = False) -> Answer:
    return Answer(split_words(text), (), _thoughts(-1, reasoning), False, prompt_words)


def _thoughts(step: int, reasoning: bool) -> tuple[str, ...]:
    """What a reasoning upstream (one with a reasoning quirk) thinks before it acts."""
    return split_words(f"planning step {step + 1}" if step >= 0 else "ready to answer") if reasoning else ()


def tool_outputs_since_user(messages: list[Json]) -> list[str]:
    """The text of each `tool` message after the last `user` message."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return [content_text(m.get("content")) for m in messages[last_user + 1:] if m.get("role") == "tool"]


def function_names(body: Json) -> set[str]:
    """The names of the function tools a chat or Responses request offers."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and tool.get("type") == "function"]
    return {(tool.get("function") or tool).get("name") for tool in tools} - {None}
