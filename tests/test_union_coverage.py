"""``engine.union_coverage``: every variant of every union a mapping meets is accounted for.

The check that would have caught namespace tools: a variant that is neither a case of the map
that decides it, nor mapped, dropped or rejected in the mapping's ``coverage`` section, fails
``mapper lint``; so do a missing declaration and a stale one.
"""

from __future__ import annotations

import copy

import pytest

from mapper.engine.lint import lint
from mapper.engine.load import load
from mapper.engine.union_coverage import UNION_SITES, union_problems, union_variants


def test_variants_are_read_from_the_schemas_through_refs_and_nested_unions() -> None:
    tools = union_variants("openai.responses", "request", "tools[]")
    assert {"function", "custom", "namespace", "web_search", "mcp"} <= set(tools)
    items = union_variants("openai.responses", "request", "input[]")
    # EasyInputMessage, the Item union, and the item reference whose `type` may be null
    assert {"message", "function_call", "reasoning", "item_reference", "compaction"} <= set(items)
    assert union_variants("openai.chat", "request", "messages[]") == (
        "assistant", "developer", "function", "system", "tool", "user")
    events = union_variants("openai.responses", "stream", "events")
    assert "response.output_text.delta" in events and "error" in events


def test_every_site_has_variants() -> None:
    for (api, kind), sites in UNION_SITES.items():
        for site in sites:
            assert union_variants(api, kind, site), f"{api} {kind} {site} found no variants"


@pytest.mark.parametrize("name", ["openai-chat", "openai-responses"])
def test_both_base_mappings_account_for_every_variant(name: str) -> None:
    report = lint(name)
    assert report.ok, report.problems


def _chat_spec() -> dict:
    return copy.deepcopy(load("openai-chat").spec)


def test_a_variant_missing_from_the_switch_fails() -> None:
    spec = _chat_spec()
    del spec["maps"]["tool"]["cases"]["namespace"]  # what openai-chat 1.1 was: namespace unhandled
    problems = union_problems(spec, "openai.responses", "openai.chat")
    assert problems == [
        "coverage.request.tools[]: variant 'namespace' is neither a case of maps.tool, mapped, "
        "dropped nor rejected (add it, with the reason, to this declaration)"]


def test_a_missing_declaration_fails() -> None:
    spec = _chat_spec()
    del spec["coverage"]["request"]["text.format"]
    problems = union_problems(spec, "openai.responses", "openai.chat")
    assert problems == ["coverage.request.text.format: no declaration for the union of "
                        "openai.responses request 'text.format' (3 variants): say what each is"]


def test_stale_and_unknown_declarations_fail() -> None:
    spec = _chat_spec()
    spec["coverage"]["response"]["output[]"]["drop"]["hologram_call"] = "no such item"
    spec["coverage"]["response"]["output[]"]["mapped"].append("hologram")
    spec["coverage"]["request"]["input[].hologram[]"] = {"mapped": ["x"]}
    spec["coverage"]["request"]["tools[]"]["cases"] = "no_such_map"
    problems = union_problems(spec, "openai.responses", "openai.chat")
    assert "coverage.response.output[]: drop pattern 'hologram_call' matches no variant" in problems
    assert "coverage.response.output[]: mapped names 'hologram', which is no variant" in problems
    assert any(p.startswith("coverage.request: 'input[].hologram[]' is not a union site")
               for p in problems)
    assert "coverage.request.tools[]: cases names no map with a switch ('no_such_map')" in problems


def test_stream_event_ids_count_as_produced_and_rules_for_values_as_handled() -> None:
    spec = _chat_spec()
    spec["stream"]["kinds"]["message"]["parts"]["refusal"]["delta"] = {}
    problems = union_problems(spec, "openai.responses", "openai.chat")
    assert problems == ["coverage.stream.events: variant 'response.refusal.delta' is neither a case, "
                        "mapped, dropped nor rejected (add it, with the reason, to this declaration)"]
    reverse = copy.deepcopy(load("openai-responses").spec)
    del reverse["stream"]["rules"]["refusal"]
    problems = union_problems(reverse, "openai.chat", "openai.responses")
    assert problems == ["coverage.upstream_stream.events: variant 'response.refusal.delta' is neither "
                        "a case, mapped, dropped nor rejected (add it, with the reason, to this "
                        "declaration)"]
