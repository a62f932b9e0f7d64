"""engine/load.py and engine/merge.py: line numbers, built-in names, overlays, include, and what changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapper.engine import deterministic_context, load_mapping
from mapper.engine.errors import OverlayError, SpecError, SpecErrors
from mapper.engine.load import MAPPINGS_DIR, LineDict, load, locate, merge, read_yaml, version_matches
from mapper.engine.merge import RULE_KINDS, changes
from mapper.engine.nodes import Replace
from mapper.engine.ops import plain
from mapper.engine.schema import mapping_schema

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


# -- merging: what an overlay's entries do to the base's ------------------------------------------


def base_spec() -> dict:
    return plain(load("openai-chat").spec)


def merged(tmp_path: Path, body: str) -> dict:
    return plain(load(write(tmp_path, "o.yaml", body, overlay_id="o")).spec)


def test_null_deletes_one_modifier_and_keeps_the_rest_of_the_rule(tmp_path: Path) -> None:
    spec = merged(tmp_path, """
request:
  fields:
    model: {required: null}
""")
    assert base_spec()["request"]["fields"]["model"] == {"from": "model", "as": "string", "required": True}
    assert spec["request"]["fields"]["model"] == {"from": "model", "as": "string"}


def test_a_null_for_a_key_the_base_lacks_adds_nothing(tmp_path: Path) -> None:
    spec = merged(tmp_path, "request: {fields: {no_such_field: null}}\ntables: {no_such_table: null}\n")
    assert "no_such_field" not in spec["request"]["fields"] and "no_such_table" not in spec["tables"]


def test_one_table_row_merges_into_the_base_table(tmp_path: Path) -> None:
    spec = merged(tmp_path, """
tables:
  finish_reason:
    rows:
      eos: [completed, completed, null, response.completed]
""")
    base = base_spec()["tables"]["finish_reason"]
    table = spec["tables"]["finish_reason"]
    assert table["columns"] == base["columns"] and table["default"] == base["default"]
    assert table["rows"] == {**base["rows"], "eos": ["completed", "completed", None, "response.completed"]}


def test_a_nested_emit_field_merges_and_keeps_its_modifiers(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
maps:
  usage:
    emit:
      input_tokens_details:
        emit:
          cached_tokens: {from: "prompt_tokens_details.cached_tokens || prompt_cache_hit_tokens"}
""", overlay_id="o")
    usage = plain(load(overlay).spec)["maps"]["usage"]["emit"]
    base = base_spec()["maps"]["usage"]["emit"]
    assert usage["input_tokens_details"]["emit"]["cached_tokens"] == {
        "from": "prompt_tokens_details.cached_tokens || prompt_cache_hit_tokens", "as": "integer", "default": 0}
    assert {k: v for k, v in usage.items() if k != "input_tokens_details"} == {
        k: v for k, v in base.items() if k != "input_tokens_details"}
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6, "prompt_cache_hit_tokens": 4},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    response = load_mapping(overlay).convert_response(body, request={"model": "m", "input": "hi"},
                                                     ctx=deterministic_context())
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 4, "cache_write_tokens": 0}


def test_a_rule_whose_source_changes_is_replaced_whole(tmp_path: Path) -> None:
    spec = merged(tmp_path, """
maps:
  builtin_tool:
    when: "type == 'web_search'"
    emit: {type: {value: function}, function: {emit: {name: type}}}
stream:
  rules:
    usage: {finish: "`\\"stop\\"`"}
""")
    assert "emit" not in base_spec()["maps"]["builtin_tool"]  # the base's rule has another source
    assert spec["maps"]["builtin_tool"] == {
        "when": "type == 'web_search'",
        "emit": {"type": {"value": "function"}, "function": {"emit": {"name": "type"}}}}
    # a stream rule's action counts as its source: the base's usage: and its when: are gone
    assert spec["stream"]["rules"]["usage"] == {"finish": '`"stop"`'}


def test_null_for_the_old_source_keeps_the_rest_of_the_rule(tmp_path: Path) -> None:
    spec = merged(tmp_path, """
request:
  fields:
    model: {from: null, value: fixed-model}
""")
    assert spec["request"]["fields"]["model"] == {"as": "string", "required": True, "value": "fixed-model"}


def test_a_field_named_like_a_source_is_a_field_not_a_source(tmp_path: Path) -> None:
    # emit: holds field names, and `value`, `id` or `first` are field names there: they merge
    spec = merged(tmp_path, """
maps:
  usage:
    emit:
      value: {value: 1}
      first: {from: total_tokens}
""")
    fields = spec["maps"]["usage"]["emit"]
    assert list(fields)[-2:] == ["value", "first"]
    assert set(base_spec()["maps"]["usage"]["emit"]) < set(fields)


def test_replace_tag_replaces_an_object_whole(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
tables:
  message_role: !replace
    rows: {developer: system}
""", overlay_id="o")
    spec = load(overlay).spec
    assert plain(spec["tables"]["message_role"]) == {"rows": {"developer": "system"}}
    assert not isinstance(spec["tables"]["message_role"], Replace)  # the tag has done its job
    with pytest.raises(SpecError, match="goes on an object"):
        read_yaml(Path(write(tmp_path, "bad.yaml", "a: !replace [1, 2]\n")))


def test_lists_replace_whole_and_new_keys_go_last_as_written(tmp_path: Path) -> None:
    spec = merged(tmp_path, """
tables:
  finish_reason:
    columns: [status, item_status, incomplete_details, terminal_event]
request:
  fields:
    reasoning_effort: {clamp: [1, 2]}
    brand_new: {from: x, default: null}
""")
    assert spec["request"]["fields"]["reasoning_effort"] == {
        "from": "reasoning.effort", "as": "string", "clamp": [1, 2]}  # an added modifier runs last
    assert spec["request"]["fields"]["brand_new"] == {"from": "x", "default": None}
    assert list(spec["request"]["fields"])[-1] == "brand_new"


def test_a_merged_key_points_at_the_overlay_that_wrote_it(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
tables:
  finish_reason:
    rows:
      eos: [completed, completed, null, response.completed]
""", overlay_id="o")
    spec = load(overlay).spec
    rows = spec["tables"]["finish_reason"]["rows"]
    assert rows.key_lines["eos"] == (overlay, 9)
    assert rows.key_lines["stop"][0] == "openai-chat.yaml"


def test_the_schema_still_has_the_rules_the_merge_knows() -> None:
    definitions = mapping_schema()["$defs"]
    assert set(RULE_KINDS) <= set(definitions)
    actions = {key for choice in definitions["streamRule"]["oneOf"] for key in choice["required"]}
    assert actions == set(RULE_KINDS["streamRule"])
    assert set(RULE_KINDS["ruleObject"]) <= set(definitions["ruleObject"]["properties"])


# -- errors in an overlay point at the overlay ------------------------------------------------


def spec_errors(reference: str) -> list[SpecError]:
    with pytest.raises(SpecErrors) as caught:
        load_mapping(reference)
    return caught.value.errors


def test_a_row_that_does_not_fit_points_at_the_overlay_row(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
tables:
  finish_reason:
    rows:
      eos: [completed, completed]
""", overlay_id="o")
    (error,) = spec_errors(overlay)  # the table is built without the row: its lookups still compile
    assert (error.file, error.line, error.rule) == (overlay, 9, "tables.finish_reason")
    assert error.message == "row 'eos' needs 4 values (status, item_status, incomplete_details, terminal_event)"


def test_columns_an_overlay_changes_are_blamed_for_the_base_rows_they_no_longer_fit(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
tables:
  finish_reason:
    columns: [status, item_status, incomplete_details]
""", overlay_id="o")
    errors = spec_errors(overlay)
    assert (errors[0].file, errors[0].line) == (overlay, 8)
    assert errors[0].message.startswith("row 'stop' needs 3 values (status, item_status, incomplete_details); "
                                        "the row is at openai-chat.yaml:")


def test_a_lookup_of_a_column_an_overlay_removed_points_at_the_overlay(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
tables:
  finish_reason: !replace
    rows: {stop: completed}
""", overlay_id="o")
    errors = spec_errors(overlay)
    assert errors and all((error.file, error.line) == (overlay, 7) for error in errors)
    assert "table 'finish_reason' has no column 'status' (columns: ), which openai-chat.yaml:" in errors[0].message
    assert errors[0].message.endswith("[response.fields.status] looks up")


def test_a_lookup_of_a_column_the_base_never_had_points_at_the_overlay_rule(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
response:
  fields:
    status: {lookup: finish_reason.reason}
""", overlay_id="o")
    (error,) = spec_errors(overlay)
    assert (error.file, error.line, error.rule) == (overlay, 8, "response.fields.status")


def test_a_bad_nested_rule_points_at_the_overlay_line(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", """
maps:
  usage:
    emit:
      output_tokens: {as: int}
""", overlay_id="o")
    (error,) = spec_errors(overlay)
    assert (error.file, error.line, error.rule) == (overlay, 9, "maps.usage")


# -- include and versions ---------------------------------------------------------------------


def test_include_applies_other_overlays_first_and_the_own_entries_win(tmp_path: Path) -> None:
    write(tmp_path, "roles.yaml", "tables: {message_role: {rows: {developer: system}}}\n", "roles")
    write(tmp_path, "mine.yaml", "include: [roles.yaml]\ntables: {message_role: {rows: {system: user}}}\n",
          "mine")
    loaded = load(str(tmp_path / "mine.yaml"))
    assert loaded.spec["tables"]["message_role"]["rows"] == {"system": "user", "developer": "system"}
    assert loaded.sources == ("openai-chat.yaml", str(tmp_path / "roles.yaml"), str(tmp_path / "mine.yaml"))
    assert "include" not in loaded.spec


def test_an_overlay_included_twice_is_applied_once(tmp_path: Path) -> None:
    write(tmp_path, "shared.yaml", "options: {marker: shared}\n", "shared")
    write(tmp_path, "a.yaml", "include: [shared.yaml]\noptions: {marker: a}\n", "a")
    write(tmp_path, "b.yaml", "include: [shared.yaml, a.yaml]\n", "b")
    loaded = load(str(tmp_path / "b.yaml"), overlays=[str(tmp_path / "shared.yaml")])
    assert [Path(source).name for source in loaded.sources] == ["openai-chat.yaml", "shared.yaml", "a.yaml",
                                                                "b.yaml"]
    assert loaded.spec["options"]["marker"] == "a"  # shared was not applied again after a


def test_an_include_cycle_is_a_located_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "include: [b.yaml]\n", "a")
    write(tmp_path, "b.yaml", "description: b\ninclude:\n  - a.yaml\n", "b")
    with pytest.raises(OverlayError) as caught:
        load(str(tmp_path / "a.yaml"))
    error = caught.value
    assert (error.file, error.line) == (str(tmp_path / "b.yaml"), 7)
    assert error.message == (f"include cycle: {tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> "
                             f"{tmp_path / 'a.yaml'}")


def test_an_included_overlay_must_fit_the_same_base(tmp_path: Path) -> None:
    write(tmp_path, "old.yaml", 'format: mapper/1\nid: old\nversion: 1.0.0\n'
                                'extends: {mapping: openai-chat, version: "^2"}\n')
    write(tmp_path, "a.yaml", "include: [old.yaml]\n", "a")
    with pytest.raises(OverlayError) as caught:
        load(str(tmp_path / "a.yaml"))
    assert (caught.value.file, caught.value.line) == (str(tmp_path / "old.yaml"), 4)
    assert caught.value.message.endswith(f"but this overlay needs ^2 (included by {tmp_path / 'a.yaml'}:5)")
    write(tmp_path, "base.yaml", "format: mapper/1\nid: base\n")
    write(tmp_path, "b.yaml", "include: [base.yaml]\n", "b")
    with pytest.raises(OverlayError, match="base.yaml is neither an overlay"):
        load(str(tmp_path / "b.yaml"))
    write(tmp_path, "c.yaml", "include: roles\n", "c")
    with pytest.raises(OverlayError, match="include takes a list"):
        load(str(tmp_path / "c.yaml"))
    with pytest.raises(OverlayError, match="a.yaml is not a part"):  # a base includes only parts
        load(write(tmp_path, "d.yaml", "format: mapper/1\nid: d\ninclude: [a.yaml]\n"))


# -- parts: what several mappings share --------------------------------------------------------

PART = "format: mapper/1\npart: shared\ndescription: shared entries\n"


def test_a_base_gets_its_parts_entries_under_its_own(tmp_path: Path) -> None:
    write(tmp_path, "shared.yaml", PART + "options: {kept: part, mine: part}\n"
                                          "tables: {t: {rows: {a: 1, b: 2}}}\n")
    base = Path(load("openai-chat").sources[0])
    text = (MAPPINGS_DIR / base).read_text().replace("\noptions:\n", "\ninclude: [shared.yaml]\noptions:\n"
                                                     "  mine: base\n  nothing: null\n", 1)
    (tmp_path / "base.yaml").write_text(text)
    loaded = load(str(tmp_path / "base.yaml"))
    options = loaded.spec["options"]
    assert (options["kept"], options["mine"]) == ("part", "base")   # the base's own entries win
    assert "nothing" in options and options["nothing"] is None      # a base's null is a value
    assert loaded.spec["tables"]["t"]["rows"] == {"a": 1, "b": 2}
    assert "include" not in loaded.spec and "part" not in loaded.spec
    assert loaded.sources == (str(tmp_path / "shared.yaml"), str(tmp_path / "base.yaml"))
    # an overlay of that base sees the part, and may include a part of its own
    write(tmp_path, "more.yaml", PART.replace("shared", "more") + "options: {more: yes}\n")
    overlay = write(tmp_path, "o.yaml", "include: [more.yaml]\noptions: {kept: overlay}\n", "o")
    overlay_text = Path(overlay).read_text().replace("mapping: openai-chat", f"mapping: {tmp_path / 'base.yaml'}")
    Path(overlay).write_text(overlay_text)
    composed = load(overlay)
    assert (composed.spec["options"]["kept"], composed.spec["options"]["more"]) == ("overlay", True)
    assert composed.sources[-2:] == (str(tmp_path / "more.yaml"), overlay)


def test_a_part_is_not_a_mapping_and_says_no_identity(tmp_path: Path) -> None:
    part = write(tmp_path, "shared.yaml", PART + "version: 1.0.0\n")
    with pytest.raises(OverlayError, match="not a mapping"):
        load(part)
    base = write(tmp_path, "base.yaml", "format: mapper/1\nid: b\ninclude: [shared.yaml]\n")
    with pytest.raises(OverlayError) as caught:
        load(base)
    assert (caught.value.file, caught.value.line) == (part, 4)
    assert caught.value.message.startswith("a part does not say version")


def test_both_anthropic_mappings_share_the_messages_part() -> None:
    chat, responses = load("anthropic-chat"), load("anthropic-responses")
    for loaded in (chat, responses):
        assert loaded.sources[0] == "parts/anthropic-messages.yaml"
        assert loaded.spec["tables"]["status_error"]["rows"]["503"] == ["overloaded_error", 529]
    assert chat.spec["stream"]["kinds"] == responses.spec["stream"]["kinds"]
    # each keeps its own upstream side: the same tool union, custom tools written its own way
    assert chat.spec["maps"]["tool"]["cases"].keys() == responses.spec["maps"]["tool"]["cases"].keys()
    assert chat.spec["maps"]["tool"]["cases"]["web_search_20250305"] == {"apply": "builtin_tool"}
    assert responses.spec["maps"]["tool"]["cases"]["web_search_20250305"] == {"apply": "web_search"}
    with pytest.raises(OverlayError, match="not a mapping"):
        load("parts/anthropic-messages")


def test_overlay_flag_checks_the_version_as_mapping_does(tmp_path: Path) -> None:
    future = write(tmp_path, "future.yaml", 'format: mapper/1\nid: future\nversion: 1.0.0\n'
                                            'extends: {mapping: openai-chat, version: "^9"}\n')
    for attempt in (lambda: load(future), lambda: load("openai-chat", overlays=[future]),
                    lambda: load("deepseek", overlays=[future])):
        with pytest.raises(OverlayError) as caught:
            attempt()
        assert (caught.value.file, caught.value.line, caught.value.code) == (future, 4, "M103")
        version = load("openai-chat").spec["version"]
        assert caught.value.message == f"openai-chat.yaml is version {version}, but this overlay needs ^9"


# -- changes: the reverse of merge ------------------------------------------------------------


def test_changes_show_only_what_differs_and_merge_back() -> None:
    base = {"a": {"x": 1, "y": [1, 2], "z": {"k": True}}, "gone": 1, "same": "s"}
    resolved = {"a": {"x": 2, "y": [1, 2], "z": {"k": 1}}, "same": "s", "new": {"n": None}}
    found = changes(base, resolved)
    assert found == {"a": {"x": 2, "z": {"k": 1}}, "new": {"n": None}, "gone": None}  # True is not 1
    assert plain(merge(LineDict(base), LineDict(found))) == resolved


def test_a_null_value_the_merge_cannot_write_shows_as_a_replaced_object() -> None:
    base = {"maps": {"m": {"from": "a", "default": 0}}}
    resolved = {"maps": {"m": {"from": "a", "default": None}}}
    found = changes(base, resolved)
    assert isinstance(found["maps"]["m"], Replace)
    assert plain(merge(LineDict(base), LineDict(found))) == resolved


def test_a_rule_whose_source_changed_shows_whole() -> None:
    base = {"maps": {"m": {"drop": "no", "when": "a"}}}
    resolved = {"maps": {"m": {"emit": {"x": "y"}, "when": "a"}}}
    assert changes(base, resolved) == resolved
    assert plain(merge(LineDict(base), LineDict(resolved))) == resolved
