"""What the proxy benchmark measures: two directions, three targets, and whether mapper is ready.

A **direction** is a client API in front of an upstream API. For each one the bench sends the same
conversation three ways, back to back in every round:

    direct     the upstream's own API, straight to the upstream: the baseline
    reference  the same request through the bare pass-through proxy (bench/passthrough.py)
    mapper     the client's API to ``mapper serve``, which converts both ways

Overheads are "this target minus direct, in the same round", so the canned upstream's own time
cancels out.

Availability is decided at run time, never assumed (the bench was written while the proxy, the
reverse mapping and the stream runtime were still landing): ``mapper_status`` looks for the
``serve`` command and the mapping, and ``run.py`` sends one checked request to every target before
measuring it (``check_body``). Whatever is missing or broken is reported as "not available yet" with
the reason, and the rest still runs. ``mapper_argv`` is the one place that knows mapper's command
line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import orjson

from . import payloads

Json = object
TARGETS = ("direct", "reference", "mapper")


@dataclass(frozen=True)
class Direction:
    """A client API in front of an upstream API, and the documents each side sends."""

    key: str
    title: str
    mapping: str
    client_api: str  # "responses" or "chat"
    client_path: str
    upstream_api: str
    upstream_path: str
    client_body: Callable[[bool], Json]
    upstream_body: Callable[[bool], Json]


DIRECTIONS = (
    Direction("responses-to-chat", "Responses client → Chat Completions upstream (openai-chat)",
              "openai-chat", "responses", "/v1/responses", "chat", "/v1/chat/completions",
              payloads.responses_request, payloads.chat_request),
    Direction("chat-to-responses", "Chat Completions client → Responses upstream (openai-responses)",
              "openai-responses", "chat", "/v1/chat/completions", "responses", "/v1/responses",
              payloads.chat_request, payloads.responses_request),
)


@dataclass(frozen=True)
class Scenario:
    """One cell of the matrix: a direction, streamed or not, at one concurrency."""

    direction: Direction
    stream: bool
    concurrency: int

    @property
    def key(self) -> str:
        return f"{self.direction.key}/{'stream' if self.stream else 'json'}/c{self.concurrency}"


def scenarios(concurrencies: tuple[int, ...]) -> list[Scenario]:
    return [Scenario(direction, stream, concurrency)
            for direction in DIRECTIONS for stream in (False, True) for concurrency in concurrencies]


def request_for(scenario: Scenario, target: str) -> tuple[str, bytes, str]:
    """(path, body, api of the answer) that ``target`` is sent in ``scenario``."""
    direction = scenario.direction
    if target == "mapper":
        return (direction.client_path, orjson.dumps(direction.client_body(scenario.stream)),
                direction.client_api)
    return (direction.upstream_path, orjson.dumps(direction.upstream_body(scenario.stream)),
            direction.upstream_api)


def check_body(api: str, stream: bool, body: bytes) -> str | None:
    """Why ``body`` is not a complete, successful answer in ``api``; None when it is."""
    if stream:
        if api == "chat":
            ok = b"chat.completion.chunk" in body and b"[DONE]" in body
            return None if ok else f"not a complete chat stream: {body[:200]!r}"
        ok = b"response.completed" in body
        return None if ok else f"no response.completed event in the stream: {body[:200]!r}"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"not JSON: {body[:200]!r}"
    if api == "chat":
        ok = isinstance(document, dict) and document.get("object") == "chat.completion"
    else:
        ok = isinstance(document, dict) and document.get("object") == "response" \
            and document.get("status") == "completed"
    return None if ok else f"unexpected answer: {body[:200]!r}"


# -- mapper's proxy --------------------------------------------------------------------------------


def mapper_status(direction: Direction) -> str | None:
    """Why mapper cannot serve ``direction`` yet (None when it looks ready to try)."""
    try:
        from mapper.cli import main
        from mapper.engine import builtin_names
    except Exception as error:  # noqa: BLE001 - any import failure means "not available"
        return f"mapper does not import: {error!r}"
    commands = getattr(main, "commands", {})
    if "serve" not in commands:
        return "`mapper serve` does not exist yet"
    if direction.mapping not in builtin_names():
        return f"the `{direction.mapping}` mapping does not exist yet"
    return None


def mapper_argv(direction: Direction, upstream_port: int, port: int,
                extra: tuple[str, ...] = ()) -> list[str]:
    """The command that starts ``mapper serve`` for ``direction``: one worker, like the reference."""
    return [sys.executable, "-m", "mapper.cli", "serve", "--mapping", direction.mapping,
            "--upstream", f"http://127.0.0.1:{upstream_port}/v1",
            "--host", "127.0.0.1", "--port", str(port), *extra]
