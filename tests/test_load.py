"""engine/load.py: line numbers, built-in names, and overlay merging by rule id."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapper.engine import load_mapping
from mapper.engine.errors import OverlayError, SpecError
from mapper.engine.load import LineDict, load, locate, merge, read_yaml, version_matches

OVERLAY_HEAD = """format: mapper/1
id: {id}
version: 1.0.0
extends: {{mapping: openai-chat, version: "^1"}}
"""


def write(tmp_path: Path, name: str, body: str, overlay_id: str | None = None) -> str:
    path = tmp_path / name
    head = OVERLAY_HEAD.format(id=overlay_id) if overlay_id else ""
    path.write_text(head + body)
    return str(path)


def test_nodes_remember_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("a:\n  b: 1\n  c:\n    - x\n")
    document = read_yaml(path, "m.yaml")
    assert isinstance(document, LineDict)
    assert document["a"].line == 2
    assert document["a"].key_lines["c"] == ("m.yaml", 3)
    assert document["a"]["c"].line == 4


def test_builtins_resolve_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for reference in ("openai-chat", "openai-chat.yaml"):
        path, display = locate(reference)
        assert path.name == "openai-chat.yaml" and display == "openai-chat.yaml"
    with pytest.raises(OverlayError) as caught:
        locate("no-such-mapping")
    assert "openai-chat" in str(caught.value)  # the message lists the built-ins


def test_a_local_file_wins_over_a_builtin_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "openai-chat.yaml", "custom: true\n")
    path, _ = locate("openai-chat.yaml")
    assert path.resolve().parent == tmp_path.resolve()


def test_overlay_replaces_entries_whole_adds_and_deletes(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
request:
  fields:
    max_tokens: null
    max_completion_tokens: {from: max_output_tokens, as: integer}
tables:
  message_role:
    rows: {system: system, developer: system}
""", overlay_id="test-overlay")
    spec = load(overlay).spec
    fields = spec["request"]["fields"]
    assert "max_tokens" not in fields
    assert list(fields)[-1] == "max_completion_tokens"  # new ids go after the base's
    assert "model" in fields  # untouched base entries stay
    assert spec["tables"]["message_role"]["rows"] == {"system": "system", "developer": "system"}
    assert "finish_reason" in spec["tables"]
    assert spec["id"] == "test-overlay"
    # the merged key still points at the overlay's file and line
    assert fields.key_lines["max_completion_tokens"] == (overlay, 9)


def test_overlay_behaviour_reaches_the_compiled_mapping(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
request:
  fields:
    max_tokens: null
    max_completion_tokens: {from: max_output_tokens, as: integer}
""", overlay_id="tokens")
    converted = load_mapping(overlay).convert_request({"model": "m", "input": "hi",
                                                        "max_output_tokens": 64})
    assert converted["max_completion_tokens"] == 64 and "max_tokens" not in converted


def test_overlays_compose_in_order_and_last_wins(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "options: {incomplete_as_completed: true, marker: a}\n", "a")
    second = write(tmp_path, "b.yaml", "options: {marker: b}\n", "b")
    loaded = load("openai-chat", overlays=[first, second])
    assert loaded.spec["options"]["marker"] == "b"
    assert loaded.spec["options"]["incomplete_as_completed"] is True
    assert loaded.sources == ("openai-chat.yaml", first, second)


def test_options_apply_last(tmp_path: Path) -> None:
    overlay = write(tmp_path, "a.yaml", "options: {incomplete_as_completed: true}\n", "a")
    mapping = load_mapping("openai-chat", overlays=[overlay],
                           options={"incomplete_as_completed": False})
    assert mapping.options["incomplete_as_completed"] is False


def test_an_overlay_for_another_base_is_refused(tmp_path: Path) -> None:
    other = write(tmp_path, "other.yaml", """format: mapper/1
id: other
version: 1.0.0
extends: {mapping: some-other-base}
""")
    with pytest.raises(OverlayError) as caught:
        load("openai-chat", overlays=[other])
    assert "some-other-base" in str(caught.value)


def test_overlay_given_with_overlay_flag_must_extend(tmp_path: Path) -> None:
    plain = write(tmp_path, "plain.yaml", "format: mapper/1\nid: plain\n")
    with pytest.raises(OverlayError):
        load("openai-chat", overlays=[plain])


def test_a_section_can_be_deleted_with_null(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", "error: null\n", "no-errors")
    assert "error" not in load(overlay).spec
    assert load_mapping(overlay).error is None


def test_merge_does_not_touch_its_inputs() -> None:
    base = LineDict(options=LineDict(a=1))
    overlay = LineDict(options=LineDict(a=2))
    merged = merge(base, overlay)
    assert merged["options"]["a"] == 2 and base["options"]["a"] == 1


@pytest.mark.parametrize("version, wanted, ok", [
    ("1.0.0", "^1", True), ("1.4.2", "^1.2", True), ("1.1.0", "^1.2", False),
    ("2.0.0", "^1", False), ("1.0.0", ">=1.0", True), ("0.9.0", ">=1.0", False),
    ("1.2.3", "1.2.3", True), ("1.2.4", "1.2.3", False), ("bad", "^1", False),
])
def test_version_ranges(version: str, wanted: str, ok: bool) -> None:
    assert version_matches(version, wanted) is ok


def test_a_mapping_file_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(SpecError) as caught:
        load(path)
    assert "must be a YAML object" in str(caught.value)
