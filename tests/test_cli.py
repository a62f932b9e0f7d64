"""cli.py: the relied-on contracts of `mapper convert`, `lint`, `resolve` and `functions`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mapper.cli import main
from support.schemas import assert_valid

REQUEST = {"model": "m", "input": [{"role": "user", "content": "hi"}],
           "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}
CHAT_RESPONSE = {"id": "c", "object": "chat.completion", "created": 5, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "hello"}}]}


def invoke(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess | object:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_convert_request_from_stdin() -> None:
    result = invoke("convert", "--mapping", "openai-chat", "--kind", "request",
                    stdin=json.dumps(REQUEST))
    assert result.exit_code == 0, result.output
    converted = json.loads(result.output)
    assert_valid("chat.request", converted)
    assert converted["tools"][0]["function"]["name"] == "f"


def test_convert_response_echoes_the_request(tmp_path: Path) -> None:
    (tmp_path / "req.json").write_text(json.dumps(REQUEST))
    (tmp_path / "resp.json").write_text(json.dumps(CHAT_RESPONSE))
    result = invoke("convert", "-m", "openai-chat.yaml", "-k", "response", "--request",
                    str(tmp_path / "req.json"), "--deterministic", str(tmp_path / "resp.json"))
    assert result.exit_code == 0, result.output
    response = json.loads(result.output)
    assert_valid("responses.response", response)
    assert response["id"] == "resp_0001" and response["created_at"] == 5
    assert response["tools"][0]["name"] == "f"
    assert response["output"][0]["content"][0]["text"] == "hello"


def test_convert_notes_what_it_left_out_on_stderr(tmp_path: Path) -> None:
    second = {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "bye"}}
    answer = {**CHAT_RESPONSE, "choices": [*CHAT_RESPONSE["choices"], second]}
    result = CliRunner().invoke(main, ["convert", "-m", "openai-chat", "-k", "response", "--compact"],
                                input=json.dumps(answer))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"][0]["content"][0]["text"] == "hello"
    assert result.stderr == "note: left out choices[1]\n"


def test_convert_error_with_status() -> None:
    result = invoke("convert", "-m", "openai-chat", "-k", "error", "--status", "429",
                    "--compact", stdin='{"detail": "slow down"}')
    assert result.exit_code == 0
    assert json.loads(result.output) == {"error": {"message": "slow down", "type": "rate_limit_error",
                                                   "param": None, "code": None}}
    assert result.output.count("\n") == 1  # --compact: one line


def test_convert_jsonl_converts_each_line() -> None:
    lines = "\n".join(json.dumps({"model": "m", "input": text}) for text in ("a", "b", "c"))
    result = invoke("convert", "-m", "openai-chat", "-k", "request", "--jsonl", stdin=lines + "\n")
    assert result.exit_code == 0
    outputs = [json.loads(line) for line in result.output.splitlines()]
    assert [o["messages"][0]["content"] for o in outputs] == ["a", "b", "c"]


@pytest.mark.parametrize("stdin, fragment", [
    ('{"model": "m", "input": "x", "temperature": "hot"}',
     "temperature: M205 Invalid type for 'temperature': expected a decimal, but got a string instead."),
    ('{"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "o"}]}',
     "input[0].call_id: M201"),
    ('{"model": "m", "input": [{"type": "mystery"}]}',
     "input[0]: M202 input items of type 'mystery' cannot be sent"),
    ('{"model": ', "invalid JSON"),
])
def test_bad_input_exits_1_with_one_located_line(stdin: str, fragment: str) -> None:
    result = invoke("convert", "-m", "openai-chat", "-k", "request", stdin=stdin)
    assert result.exit_code == 1
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_jsonl_error_names_the_line() -> None:
    stdin = '{"model": "m", "input": "ok"}\n{"model": "m", "input": 3}\n'
    result = invoke("convert", "-m", "openai-chat", "-k", "request", "--jsonl", stdin=stdin)
    assert result.exit_code == 1 and "<stdin>:2: input:" in result.output


def test_jsonl_keep_going_answers_every_line_and_exits_1() -> None:
    stdin = '{"model": "m", "input": "ok"}\n{"model": "m", "input": 3}\n{"model": \n{"model": "m", "input": "end"}\n'
    result = CliRunner().invoke(
        main, ["convert", "-m", "openai-chat", "-k", "request", "--jsonl", "--keep-going"], input=stdin)
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4  # one output line per input line, so outputs stay aligned with inputs
    assert lines[0]["messages"][0]["content"] == "ok" and lines[3]["messages"][0]["content"] == "end"
    for bad in lines[1:3]:
        assert_valid("error", bad)
    # the client API's code in the error object, mapper's code on stderr
    assert (lines[1]["error"]["param"], lines[1]["error"]["code"]) == ("input", "invalid_type")
    assert lines[2]["error"]["code"] == "invalid_json"
    assert "<stdin>:2: input: M205" in result.stderr and "<stdin>:3: invalid JSON" in result.stderr
    assert "2 line(s) could not be converted" in result.stderr


def test_keep_going_needs_jsonl() -> None:
    assert invoke("convert", "-m", "openai-chat", "-k", "request", "--keep-going", stdin="{}").exit_code == 2


def test_unknown_mapping_and_missing_kind() -> None:
    result = invoke("convert", "-m", "nope", "-k", "request", stdin="{}")
    # the mapping is loaded while the options are parsed: a bad one is a usage error
    assert result.exit_code == 2 and "no mapping file or built-in mapping named 'nope'" in result.output
    assert "Invalid value for '--mapping'" in result.output
    assert invoke("convert", "-m", "openai-chat", stdin="{}").exit_code == 2  # usage error


def test_a_mapping_that_does_not_compile_fails_while_parsing_options(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("""format: mapper/1
id: broken
version: 1.0.0
from: openai.responses
to: openai.chat
request:
  fields:
    model: {from: model, fn: merge_tool_call}
""")
    for args in (("convert", "-m", str(broken), "-k", "request"), ("resolve", str(broken)),
                 ("serve", "-m", str(broken), "--upstream", "http://127.0.0.1:1")):
        result = invoke(*args, stdin="{}")
        assert result.exit_code == 2, args
        assert "M102 unknown function 'merge_tool_call'" in result.output, args


def test_overlays_apply_on_top_of_the_mapping_the_option_loaded() -> None:
    plain = invoke("convert", "-m", "openai-chat", "-k", "request", "--compact",
                   stdin='{"model": "m", "input": "hi", "max_output_tokens": 50}')
    overlaid = invoke("convert", "-m", "openai-chat", "--overlay", "max-completion-tokens", "-k", "request",
                      "--compact", stdin='{"model": "m", "input": "hi", "max_output_tokens": 50}')
    assert json.loads(plain.output)["max_tokens"] == 50
    assert json.loads(overlaid.output)["max_completion_tokens"] == 50
    assert "max_tokens" not in json.loads(overlaid.output)


def test_lint_builtins_pass_and_report_coverage() -> None:
    result = invoke("lint")
    assert result.exit_code == 0, result.output
    assert "ok   openai-chat" in result.output and "request 31/31" in result.output


def test_lint_fails_on_an_unaccounted_field() -> None:
    result = invoke("lint", str(Path(__file__).parent / "data" / "gap-overlay.yaml"))
    assert result.exit_code == 1
    assert "request field 'truncation' is neither mapped, dropped" in result.output


def test_resolve_prints_the_merged_mapping(tmp_path: Path) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text("""format: mapper/1
id: tokens
version: 1.0.0
extends: {mapping: openai-chat, version: "^1"}
request:
  fields:
    max_tokens: null
    max_completion_tokens: {from: max_output_tokens, as: integer}
""")
    result = invoke("resolve", str(overlay), "--option", "incomplete_as_completed=true")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"# resolved from: openai-chat.yaml + {overlay} + <options>")
    resolved = yaml.safe_load(result.output)
    fields = resolved["request"]["fields"]
    assert "max_completion_tokens" in fields and "max_tokens" not in fields
    assert resolved["options"]["incomplete_as_completed"] is True


def test_functions_lists_every_function_with_its_summary() -> None:
    result = invoke("functions")
    assert result.exit_code == 0
    assert "merge_assistant_turns" in result.output and "(last_status)" in result.output


def test_installed_console_script_finds_builtins_from_any_directory(tmp_path: Path) -> None:
    script = shutil.which("mapper", path=str(Path(sys.executable).parent))
    assert script, "the mapper console script is installed next to the interpreter"
    done = subprocess.run([script, "convert", "--mapping", "openai-chat.yaml", "--kind", "request"],
                          input=json.dumps({"model": "m", "input": "hi"}), capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["messages"] == [{"role": "user", "content": "hi"}]
    bad = subprocess.run([script, "convert", "-m", "openai-chat", "-k", "request"], input="[1]",
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "JSON object" in bad.stderr


def test_convert_stream_reads_chat_sse_and_writes_responses_sse(tmp_path: Path) -> None:
    from support.responses_invariants import check_responses_stream
    from support.sse_reader import parse_sse_events

    chunks = [{"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    stream = "".join(f"data: {json.dumps({'id': 'c', 'object': 'chat.completion.chunk', 'created': 1, 'model': 'm', **c})}\n\n"
                     for c in chunks) + "data: [DONE]\n\n"
    (tmp_path / "req.json").write_text(json.dumps({"model": "m", "input": "hi", "instructions": "Be kind."}))
    result = invoke("convert", "-m", "openai-chat", "-k", "stream", "--deterministic",
                    "--request", str(tmp_path / "req.json"), stdin=stream)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("event: response.created\ndata: ")
    summary = check_responses_stream(parse_sse_events(result.output.encode()))
    assert summary["text"] == "Hi" and summary["response"]["instructions"] == "Be kind."


def test_probe_command_reports_and_exits_nonzero_when_chat_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from support.fake_upstream import FakeUpstream

    with FakeUpstream(quirks=["models_only"]) as upstream:
        result = invoke("probe", "--upstream", upstream.base_url, "--model", "fake-model",
                        "--timeout", "5")
    assert result.exit_code == 1
    assert "models" in result.output
    monkeypatch.delenv("NOPE_KEY", raising=False)
    missing = invoke("probe", "--upstream", "http://127.0.0.1:1", "--model", "m", "--api-key-env", "NOPE_KEY")
    assert missing.exit_code == 2 and "NOPE_KEY" in missing.output


def test_resolve_code_prints_the_generated_python() -> None:
    result = invoke("resolve", "openai-chat", "--code")
    assert result.exit_code == 0
    assert result.output.startswith("# generated from: openai-chat.yaml")
    assert "def _request" in result.output and "error.in_rule('maps.input_item')" in result.output
    assert "error.in_rule('request.fields.model')" in result.output  # each field names itself
    compile(result.output, "<generated>", "exec")  # it is real, complete Python
