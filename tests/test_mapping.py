"""engine/mapping.py: the compiled Mapping's run-stage entry points, beyond the fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapper.engine import RejectedField, load_mapping
from mapper.engine.lint import lint

CHAT = load_mapping("openai-chat")
REVERSE = load_mapping("openai-responses")


def test_an_unknown_parameter_is_refused_with_what_lint_would_say() -> None:
    with pytest.raises(RejectedField) as caught:
        CHAT.convert_request({"model": "m", "input": "hi", "top_k": 3})
    error = caught.value
    assert (error.path, error.rule) == (["top_k"], "request")
    for fix in ("request.fields", "request.drop", "request.reject", "request.passthrough",
                "unknown_fields: drop"):
        assert fix in error.message


def test_the_option_the_hint_names_lets_the_field_through_unread() -> None:
    lenient = load_mapping("openai-chat", options={"unknown_fields": "drop"})
    converted = lenient.convert_request({"model": "m", "input": "hi", "top_k": 3})
    assert "top_k" not in converted and converted["model"] == "m"


def test_lint_and_the_run_time_hint_name_the_same_dispositions() -> None:
    gap = Path(__file__).parent / "data" / "gap-overlay.yaml"
    [problem] = lint(str(gap)).problems
    with pytest.raises(RejectedField) as caught:
        load_mapping(str(gap)).convert_request({"model": "m", "input": "hi", "truncation": "auto"})
    for disposition in ("request.drop", "request.reject", "request.passthrough"):
        assert disposition in problem and disposition in caught.value.message


def test_answer_field_is_the_field_every_upstream_answer_has() -> None:
    assert CHAT.answer_field == "choices"  # a chat upstream answers with choices
    assert REVERSE.answer_field == "output"  # a Responses upstream with output
