"""A scripted chat model for agent clients such as Codex: a plan of shell commands, then an answer.

The toy model (``toy_model``) calls a tool once when the user names it; an agent client needs more:
it sends the task, runs every tool call the model makes, sends the output back, and repeats until
the model answers in text. ``ShellPlan`` plays that model over Chat Completions. Which step comes
next is read off the request itself (the tool results after the last user message), so the plan
keeps no state: it answers the same whether the client resends the whole history or a proxy
rebuilds it from a response store, and a retried request gets the same answer.

The shell tool is whichever one the client offers, found by name with the arguments that tool
takes (Codex offers ``exec_command`` with ``cmd``; older builds ``shell_command`` or ``shell``).
A request that offers none of them gets a text answer naming the tools it did offer, so a test
that expected commands to run fails with that in its message.

    plan = ShellPlan(("printf hi > note.txt", "cat note.txt"), final="The note says: {output}")
    with FakeUpstream(chat_model=plan.answer) as upstream: ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from .request_reading import content_text
from .toy_model import Answer, ToolCall, split_words

Json = Any

# shell tool name → how that tool takes a command line
SHELL_TOOLS: dict[str, Callable[[str], Json]] = {
    "exec_command": lambda command: {"cmd": command},
    "shell_command": lambda command: {"command": command},
    "shell": lambda command: {"command": ["bash", "-lc", command]},
}


@dataclass(frozen=True, slots=True)
class ShellPlan:
    """Run ``commands`` one per turn through the client's shell tool, then answer ``final``.

    ``final`` is formatted with ``output``, the text of the last tool result, so the answer proves
    that the output made the round trip through the client and the proxy.
    """

    commands: tuple[str, ...]
    final: str = "Done: {output}"

    def answer(self, body: Json, reasoning: bool = False) -> Answer:
        """The next step for a chat request: a shell call, or the final text."""
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        outputs = tool_outputs_since_user(messages)
        prompt_words = sum(len(content_text(m.get("content")).split()) for m in messages)
        if len(outputs) >= len(self.commands):
            text = self.final.format(output=outputs[-1].strip() if outputs else "")
            return Answer(split_words(text), (), (), False, prompt_words)
        offered = function_names(body)
        shell = next((name for name in SHELL_TOOLS if name in offered), None)
        if shell is None:
            text = f"scripted model: no shell tool among the offered tools {sorted(offered)}"
            return Answer(split_words(text), (), (), False, prompt_words)
        step = len(outputs)
        arguments = json.dumps(SHELL_TOOLS[shell](self.commands[step]))
        # call ids must stay unique across the whole conversation, not only within one answer
        return Answer((), (ToolCall(f"call_step_{step + 1}", shell, arguments),), (), False, prompt_words)


def tool_outputs_since_user(messages: list[Json]) -> list[str]:
    """The text of each `tool` message after the last `user` message."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return [content_text(m.get("content")) for m in messages[last_user + 1:] if m.get("role") == "tool"]


def function_names(body: Json) -> set[str]:
    """The names of the function tools a chat request offers."""
    return {tool["function"]["name"] for tool in body.get("tools") or []
            if isinstance(tool, dict) and tool.get("type") == "function" and "name" in (tool.get("function") or {})}
