"""LangChain's ``ChatOpenAI`` (langchain-openai) pointed at a ``mapper serve``, for the real-client tests.

Shared by the forward test (``tests/test_client_langchain.py``, ``use_responses_api=True`` in front
of a chat upstream) and the reverse one (``tests/test_client_langchain_chat.py``, Chat Completions
in front of a Responses upstream). The model's retries are off and its timeout short, so that a
failure is quick; its own HTTP client can record the bodies LangChain sends.
"""

from __future__ import annotations

import json
from typing import Any

from .mapper_serve import MapperServe

TIMEOUT = 20.0  # seconds for one request to 127.0.0.1


def chat_model(mapper: MapperServe, sent: list | None = None, **options: Any):
    """``ChatOpenAI`` on ``mapper`` with ``options``; the bodies it sends are appended to ``sent``."""
    import httpx
    from langchain_openai import ChatOpenAI

    hooks = {"request": [lambda request: sent.append(json.loads(request.content))]} if sent is not None else {}
    return ChatOpenAI(model="fake-model", base_url=mapper.base_url, api_key="sk-dummy", max_retries=0,
                      timeout=TIMEOUT, http_client=httpx.Client(event_hooks=hooks), **options)


def weather_tool():
    """A LangChain tool ``get_weather(q)`` that answers "sunny"."""
    from langchain_core.tools import tool

    @tool
    def get_weather(q: str) -> str:
        """Weather in a city."""
        return "sunny"

    return get_weather


def ask(model: Any, messages: Any, streamed: bool) -> Any:
    """``model``'s answer to ``messages``: invoked, or streamed and its chunks added up."""
    if not streamed:
        return model.invoke(messages)
    total = None
    for chunk in model.stream(messages):
        total = chunk if total is None else total + chunk
    return total
