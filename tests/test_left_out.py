"""What a conversion notes as left out (``Context.left_out``), and the ``prepare:`` rules.

The functions' examples (tests/test_functions.py) check what they return; these check what they
note on the context, which the proxy turns into its ``x-mapper-dropped`` header and log line.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mapper.engine import load_mapping
from mapper.engine.context import Context, deterministic_context
from mapper.engine.errors import ConversionError
from mapper.engine.functions import REGISTRY
from mapper.engine.streaming import StreamSession


def names(ctx: Context) -> list[str] | None:
    """What the context notes as left out, without the reasons (None when nothing is)."""
    return None if ctx.left_out is None else [what for what, _ in ctx.left_out]


def call(name: str, value: object, **args: object) -> tuple[object, list[str] | None]:
    ctx = deterministic_context()
    return REGISTRY[name].call(value, ctx, **args), names(ctx)


def test_nothing_left_out_allocates_nothing() -> None:
    assert Context().left_out is None


def test_leave_out_notes_each_part_once_in_order_with_its_first_reason() -> None:
    ctx = Context()
    for what, why in (("choices[2]", "a"), ("choices[1]", "b"), ("choices[2]", "c")):
        ctx.leave_out(what, why)
    assert ctx.left_out == [("choices[2]", "a"), ("choices[1]", "b")]


def test_only_choice_zero_notes_the_other_choices_by_index() -> None:
    answer = {"id": "c", "choices": [{"index": 2}, {"index": 0, "message": {}}, {"index": 1}]}
    kept, noted = call("only_choice_zero", answer, required=True)
    assert kept == {"id": "c", "choices": [{"index": 0, "message": {}}]}
    assert noted == ["choices[2]", "choices[1]"]
    assert len(answer["choices"]) == 3  # the document itself is not changed


def test_only_choice_zero_counts_choices_without_index_by_position() -> None:
    kept, noted = call("only_choice_zero", {"choices": [{"message": "a"}, {"message": "b"}]})
    assert (kept, noted) == ({"choices": [{"message": "a"}]}, ["choices[1]"])


def test_only_choice_zero_keeps_one_choice_zero_even_if_sent_twice() -> None:
    kept, noted = call("only_choice_zero", {"choices": [{"index": 0, "n": 1}, {"index": 0, "n": 2}]})
    assert (kept, noted) == ({"choices": [{"index": 0, "n": 1}]}, ["choices[0]"])


def test_only_choice_zero_required_notes_and_refuses_an_answer_without_one() -> None:
    ctx = Context()
    with pytest.raises(ConversionError) as caught:
        REGISTRY["only_choice_zero"].call({"choices": [{"index": 3}]}, ctx, required=True)
    assert caught.value.json_path == "choices"
    assert names(ctx) == ["choices[3]"]


def test_only_choice_zero_returns_the_same_object_for_one_choice_zero() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "a"}}]}
    kept, noted = call("only_choice_zero", chunk)
    assert kept is chunk and noted is None


def test_uncarried_output_notes_each_uncarried_item_type_once() -> None:
    output = [{"type": "web_search_call"}, {"type": "message"}, {"type": "image_generation_call"},
              {"type": "web_search_call"}]
    error, noted = call("uncarried_output", output, carried=["message"], answers=["message"])
    assert error is None
    assert noted == ["output[web_search_call]", "output[image_generation_call]"]


def test_uncarried_output_names_each_type_once_in_its_error() -> None:
    output = [{"type": "mcp_list_tools"}, {"type": "mcp_list_tools"}, {"type": "shell_call"}]
    error, _ = call("uncarried_output", output, carried=["message"], answers=["message"])
    assert "(mcp_list_tools, shell_call)" in error["message"]
    assert error["code"] == "bad_upstream_response"


def test_chat_annotations_note_citations_chat_cannot_hold() -> None:
    output = [{"type": "message", "content": [{"type": "output_text", "text": "ab", "annotations": [
        {"type": "url_citation", "url": "https://a.example/", "title": "A", "start_index": 0, "end_index": 1},
        {"type": "file_citation", "file_id": "file_1", "filename": "f.pdf", "index": 1}]}]}]
    annotations, noted = call("chat_annotations", output)
    assert [a["url_citation"]["url"] for a in annotations] == ["https://a.example/"]
    assert noted == ["annotations[file_citation]"]


# -- prepare: rules run on a whole document or frame first ----------------------------------------


def chunk(payload: dict) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", **payload}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def test_a_stream_prepare_rule_without_a_value_skips_the_frame(tmp_path: Path) -> None:
    overlay = tmp_path / "only-choice-zero.yaml"
    overlay.write_text(
        "format: mapper/1\nid: only-choice-zero\nversion: 1.0.0\n"
        "extends: {mapping: openai-chat, version: '^1'}\n"
        "stream:\n  prepare: {when: \"choices[?index == `0`] || usage\", from: '@'}\n")
    mapping = load_mapping("openai-chat", overlays=[str(overlay)])
    session = StreamSession(mapping, request={"model": "m", "input": "hi", "stream": True},
                            ctx=deterministic_context())
    assert session.feed(chunk({"choices": [{"index": 1, "delta": {"content": "b"}}]})) == b""
    assert not session.started  # a skipped frame is as if it never came
    assert b"response.output_text.delta" in session.feed(
        chunk({"choices": [{"index": 0, "delta": {"content": "a"}}]}))


def overlay(tmp_path: Path, body: str) -> str:
    path = tmp_path / "overlay.yaml"
    path.write_text("format: mapper/1\nid: overlay\nversion: 1.0.0\n"
                    "extends: {mapping: openai-chat, version: '^1'}\n" + body)
    return str(path)


def test_a_document_prepare_rule_replaces_what_the_fields_and_root_read(tmp_path: Path) -> None:
    # an error body nested one level deeper, as a gateway might wrap it
    mapping = load_mapping("openai-chat", overlays=[overlay(tmp_path, "error:\n  prepare: upstream\n")])
    body = {"upstream": {"error": {"message": "slow down", "type": "rate_limit_error"}}}
    converted = mapping.convert_error(body, status=429)
    assert converted["error"]["message"] == "slow down"


def test_a_document_prepare_rule_without_an_object_is_a_conversion_error(tmp_path: Path) -> None:
    mapping = load_mapping("openai-chat", overlays=[overlay(tmp_path, "response:\n  prepare: missing\n")])
    with pytest.raises(ConversionError, match="prepare rule gave no object"):
        mapping.convert_response({"choices": []}, request={"model": "m", "input": "x"})
