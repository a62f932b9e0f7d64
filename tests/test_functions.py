"""Every registered function's examples run as tests (like Bloblang's examples test)."""

from __future__ import annotations

import pytest

from mapper.engine import errors
from mapper.engine.context import deterministic_context
from mapper.engine.functions import REGISTRY

CASES = [(name, index) for name, function in sorted(REGISTRY.items())
         for index in range(len(function.examples))]


@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}[{i}]" for n, i in CASES])
def test_example(name: str, index: int) -> None:
    function = REGISTRY[name]
    example = function.examples[index]
    ctx = deterministic_context(**example.context)
    if example.raises:
        with pytest.raises(getattr(errors, example.raises)):
            function.call(example.given, ctx, **example.args)
    else:
        assert function.call(example.given, ctx, **example.args) == example.expect


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_function_is_documented(name: str) -> None:
    function = REGISTRY[name]
    assert function.summary and function.summary[0].isupper() and function.summary.endswith(".")
    assert function.examples
