"""The provider quirks a `FakeUpstream` can imitate, so a test can prove that a mapping overlay is needed.

A quirk rejects what a real provider rejects *before* any scripted or default reply. Most are named
checks on the request body (`BODY_QUIRKS`, each returning the provider's error message or None); the rest
are tables the server consults: paths that answer 404 (`ROUTE_QUIRKS`), the chat field reasoning goes in
(`REASONING_QUIRKS`), the field of a Responses reasoning item it goes in (`RESPONSES_REASONING_QUIRKS`)
and the switches that turn thinking on (`THINKING_SWITCHES`), plus Azure's
addressing (`AZURE_PATH`). The rest act elsewhere: `error_format_*` picks a shape from
`upstream_replies.ERROR_FORMATS`, and the server checks the `require_auth` and `azure` keys.
`KNOWN_QUIRKS` names them all, so a misspelt quirk fails when the `FakeUpstream` is built.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Union

from .request_reading import content_parts, request_messages

Json = Any

BodyCheck = Callable[[Json], Union[str, None]]
BODY_QUIRKS: dict[str, BodyCheck] = {}


def _body_quirk(check: BodyCheck) -> BodyCheck:
    BODY_QUIRKS[check.__name__] = check
    return check


@_body_quirk
def no_system_role(body: Json) -> str | None:
    """Rejects role `system` (some early open-model servers)."""
    return _role_error(body, "system")


@_body_quirk
def no_developer_role(body: Json) -> str | None:
    """Rejects role `developer` (most non-OpenAI servers)."""
    return _role_error(body, "developer")


@_body_quirk
def max_completion_tokens_only(body: Json) -> str | None:
    """Rejects `max_tokens` (OpenAI reasoning models, Azure)."""
    # https://platform.openai.com/docs/api-reference/chat/create#chat-create-max_tokens
    if "max_tokens" in body:
        return (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
    return None


@_body_quirk
def max_tokens_only(body: Json) -> str | None:
    """Rejects `max_completion_tokens` (older OpenAI-compatible servers)."""
    if "max_completion_tokens" in body:
        return "Unrecognized request argument supplied: max_completion_tokens"
    return None


@_body_quirk
def no_stream_options(body: Json) -> str | None:
    """Rejects `stream_options`."""
    return "Unrecognized request argument supplied: stream_options" if "stream_options" in body else None


@_body_quirk
def no_tool_choice_required(body: Json) -> str | None:
    """Rejects `tool_choice: "required"`."""
    return "tool_choice 'required' is not supported" if body.get("tool_choice") == "required" else None


@_body_quirk
def no_tools(body: Json) -> str | None:
    """Rejects `tools` (models without function calling)."""
    return "This model does not support tools" if "tools" in body else None


@_body_quirk
def no_images(body: Json) -> str | None:
    """Rejects image content parts (text-only models)."""
    for message in request_messages(body):
        for part in content_parts(message.get("content")):
            if part.get("type") in ("image_url", "input_image"):
                return f"Image input ({part['type']}) is not supported by this model"
    return None


@_body_quirk
def no_parallel_tool_calls_param(body: Json) -> str | None:
    """Rejects the `parallel_tool_calls` parameter."""
    if "parallel_tool_calls" in body:
        return "Unrecognized request argument supplied: parallel_tool_calls"
    return None


@_body_quirk
def no_response_format_json_schema(body: Json) -> str | None:
    """Rejects structured output (`response_format` / `text.format` of type `json_schema`)."""
    formats = [body.get("response_format"), (body.get("text") or {}).get("format")]
    if any(isinstance(f, dict) and f.get("type") == "json_schema" for f in formats):
        return "response_format of type 'json_schema' is not supported"
    return None


@_body_quirk
def reasoning_content(body: Json) -> str | None:
    """DeepSeek thinking mode: answers carry `reasoning_content`; tool-call turns must send it back."""
    # https://api-docs.deepseek.com/guides/thinking_mode#tool-calls
    for index, message in enumerate(body.get("messages") or []):
        if message.get("role") == "assistant" and message.get("tool_calls") and "reasoning_content" not in message:
            return f"Missing `reasoning_content` field in the assistant message at message index {index}"
    return None


@_body_quirk
def system_message_first(body: Json) -> str | None:
    """Rejects a system message that is not the first (Qwen3.5's and Gemma's chat templates)."""
    for index, message in enumerate(request_messages(body)):
        if index and message.get("role") == "system":
            return "Jinja Exception: System message must be at the beginning."
    return None


@_body_quirk
def ollama_reasoning_effort(body: Json) -> str | None:
    """Rejects a reasoning effort other than high, medium, low or none (Ollama)."""
    # https://github.com/ollama/ollama/blob/main/openai/openai.go (FromChatRequest)
    effort = (body.get("reasoning") or {}).get("effort") or body.get("reasoning_effort")
    if effort and effort not in ("high", "medium", "low", "none"):
        return f"invalid reasoning value: '{effort}' (must be \"high\", \"medium\", \"low\", or \"none\")"
    return None


@_body_quirk
def vllm_reasoning_effort(body: Json) -> str | None:
    """Rejects a `reasoning_effort` other than low, medium or high (vLLM's request model)."""
    # https://github.com/vllm-project/vllm/blob/main/vllm/entrypoints/openai/protocol.py
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in ("low", "medium", "high"):
        return (
            "1 validation error for ChatCompletionRequest\nreasoning_effort\n"
            f"  Input should be 'low', 'medium' or 'high' [input_value='{effort}']"
        )
    return None


# paths a quirk turns into 404s
ROUTE_QUIRKS: dict[str, frozenset[str]] = {
    "no_responses_endpoint": frozenset({"/v1/responses"}),
    "models_only": frozenset({"/v1/chat/completions", "/v1/responses"}),
    "no_chat_endpoint": frozenset({"/v1/chat/completions"}),  # Responses-only providers
}

# quirk → the chat field its reasoning goes in
REASONING_QUIRKS: dict[str, str] = {
    "reasoning_content": "reasoning_content",  # DeepSeek
    "reasoning_field": "reasoning",  # vLLM
    "enable_thinking": "reasoning_content",  # DashScope
}

# quirk → where a Responses upstream puts its reasoning item's text: raw `reasoning_text` content (gpt-oss
# behind vLLM or Ollama) or `summary_text` summaries (OpenAI's reasoning models). Such a model thinks when
# the request sets `reasoning.effort` (other than "none"), the one switch a chat client can reach
RESPONSES_REASONING_QUIRKS: dict[str, str] = {
    "responses_reasoning_text": "content",
    "responses_reasoning_summary": "summary",
}

# quirk → whether a request asks the model to think; a model with a reasoning quirk thinks unless one says no
THINKING_SWITCHES: dict[str, Callable[[Json], bool]] = {
    # DashScope hybrid models think only when asked (https://www.alibabacloud.com/help/en/model-studio/deep-thinking)
    "enable_thinking": lambda body: body.get("enable_thinking") is True,
    # Qwen3 behind vLLM or llama.cpp: the chat template thinks unless told not to
    "chat_template_kwargs": lambda body: (body.get("chat_template_kwargs") or {}).get("enable_thinking") is not False,
}

# Azure OpenAI addressing: /openai/v1/<endpoint>, or /openai/deployments/<name>/<endpoint>?api-version=...
AZURE_PATH = re.compile(
    r"^/openai/(?:deployments/(?P<deployment>[^/]+)|v1)(?P<endpoint>/chat/completions|/responses|/models)$"
)

KNOWN_QUIRKS = frozenset().union(BODY_QUIRKS, ROUTE_QUIRKS, REASONING_QUIRKS, RESPONSES_REASONING_QUIRKS,
                                  THINKING_SWITCHES) | {
    "azure",
    "error_format_detail",
    "error_format_string",
    "require_auth",
}


def _role_error(body: Json, role: str) -> str | None:
    for index, message in enumerate(request_messages(body)):
        if message.get("role") == role:
            return f"Unsupported value: 'messages[{index}].role' does not support '{role}' with this model."
    return None
